"""Every experiment option survives the trip the app's rebuild command makes, and shipped hashes stay valid.

For each option of the table (experiments/options.py, derived from ExperimentConfig's fields), its example
value: command-line words -> `precompute run`'s parser -> config -> rebuild command -> parser -> the same
experiment (every carried field, the hash, the directory name). The table is iterated, so a new field is
covered without touching this file. Also all examples at once, every preset, the special words, and the
shipped experiments under assets/ (their directory names must still be their configs' ids).
"""

from __future__ import annotations

import glob
import json
import os
import shlex

import pytest

from core.paths import REPO
from experiments.config import ExperimentConfig
from experiments.option_spec import HASHED, HASHED_IF_SET, RUN, STAGES
from experiments.options import DEFAULTS, OPTIONS, check_options, config_from_options, flag_of, option_words
from experiments.presets import PRESETS
from experiments.rebuild import COMMAND, rebuild_command
from precompute.cli import build_parser
from precompute.run_cmd import config_from_args

CLI_OPTIONS = [name for name, spec in OPTIONS.items() if spec.cli]
SHIPPED = sorted(glob.glob(os.path.join(REPO, "assets", "*", "*", "manifest.json")))


def parse(argv: list[str]) -> ExperimentConfig:
    """`python -m precompute run ARGV` up to its configuration (nothing runs)."""
    return config_from_args(build_parser("run").parse_args(["run", *argv]))


def parse_command(command: str) -> ExperimentConfig:
    assert command.startswith(COMMAND + " ") or command == COMMAND, command
    return parse(shlex.split(command)[len(COMMAND.split()):])


def experiment_fields(config: ExperimentConfig) -> dict:
    """What a rebuild must reproduce: every field but run settings; attacks and budgets as sets (the manifest
    keeps them sorted, their order changes no stage)."""
    values = {}
    for name, value in config.to_dict().items():
        if OPTIONS[name].hash == RUN:
            continue
        values[name] = sorted(value) if OPTIONS[name].hash == STAGES and isinstance(value, tuple) else value
    return values


def assert_same_experiment(rebuilt: ExperimentConfig, config: ExperimentConfig) -> None:
    assert experiment_fields(rebuilt) == experiment_fields(config)
    assert rebuilt.hashed_dict() == config.hashed_dict()
    assert rebuilt.config_hash() == config.config_hash() and rebuilt.experiment_id() == config.experiment_id()


def test_every_field_is_declared_with_an_example():
    """Each field carries its Option; each command-line option has a valid example other than its default."""
    assert list(OPTIONS) == list(ExperimentConfig.__dataclass_fields__)
    for name in CLI_OPTIONS:
        spec = OPTIONS[name]
        assert spec.example is not None and spec.example != getattr(DEFAULTS, name), name
        if spec.check is not None:
            spec.check(spec.example, flag_of(name))  # raises if the example is out of range


@pytest.mark.parametrize("name", CLI_OPTIONS)
def test_option_round_trip(name: str):
    example = OPTIONS[name].example
    config = parse(option_words(name, example))
    assert getattr(config, name) == example  # the parser reads the words back as the example value
    command = rebuild_command(config)
    rebuilt = parse_command(command)
    assert_same_experiment(rebuilt, config)
    policy = OPTIONS[name].hash
    if policy == RUN:  # a run setting: left to the machine that rebuilds
        assert flag_of(name) not in command.split() and getattr(rebuilt, name) == getattr(DEFAULTS, name)
    else:
        assert flag_of(name) in command.split(), command
    changes_hash = config.config_hash() != ExperimentConfig().config_hash()
    assert changes_hash == (policy in (HASHED, HASHED_IF_SET)), (name, policy)


def test_all_examples_at_once():
    argv = [word for name in CLI_OPTIONS for word in option_words(name, OPTIONS[name].example)]
    config = parse(argv)
    assert all(getattr(config, name) == OPTIONS[name].example for name in CLI_OPTIONS)
    check_options(config)  # the examples are valid together, as far as the per-field checks go
    assert_same_experiment(parse_command(rebuild_command(config)), config)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_round_trip(preset: str):
    """A preset alone is rebuilt by naming it; its values are fields of the config."""
    assert set(PRESETS[preset]) <= set(OPTIONS)
    config = config_from_options(preset, {})
    command = rebuild_command(config)
    assert command == f"{COMMAND} --preset {preset}"
    assert_same_experiment(parse_command(command), config)
    config.lam, config.seed = 0.25, 7  # a preset with options changed
    assert_same_experiment(parse_command(rebuild_command(config)), config)


@pytest.mark.parametrize(("argv", "field", "value"), [
    (["--attacks", "none"], "attacks", ()),
    (["--attacks", "pgd", "fmn", "pgd"], "attacks", ("pgd", "fmn")),
    (["--eps", "1", "3.5"], "eps", (1.0, 3.5)),
    (["--class-attacks", "all"], "class_attacks", None),
    (["--class-attacks", "fmn", "pgd-8"], "class_attacks", ("fmn", "pgd-8")),
    (["--train-data", "none"], "train_data", None),
    (["--limit", "none"], "limit", None),
    (["--bf16"], "bf16", True),
    (["--bf16", "off"], "bf16", False),
    (["--fold-batchnorm", "off"], "fold_batchnorm", False),
    (["--batch-size", "auto"], "batch_size", 0),
    (["--model", "resnet18"], "image_size", 224),  # filled in from the model
    (["--model", "resnet18"], "input_norm", "imagenet"),
    (["--preset", "cifar10-paper", "--attacks", "fmn"], "class_attacks", ("fmn",)),  # narrowed to this run
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_words(argv: list[str], field: str, value: object):
    assert getattr(parse(argv), field) == value


@pytest.mark.parametrize("manifest", SHIPPED, ids=lambda p: os.path.basename(os.path.dirname(p)))
def test_shipped_experiments_keep_their_names(manifest: str):
    """The hash of every shipped experiment still names its directory (and its rebuild command rebuilds it)."""
    with open(manifest) as fh:
        data = json.load(fh)
    config = ExperimentConfig.from_dict(data["config"])
    assert config.experiment_id() == os.path.basename(os.path.dirname(manifest))
    assert config.config_hash() == data["config_hash"]
    rebuilt = parse_command(rebuild_command(config))
    assert rebuilt.hashed_dict() == {**config.hashed_dict(), "checkpoint_sha256": ""}  # the runner fills it in


def test_shipped_experiments_are_found():
    assert len(SHIPPED) >= 3, SHIPPED  # the demo and two results-only reproductions
