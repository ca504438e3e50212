"""The option table, derived from ExperimentConfig's fields, and what is derived from it in turn.

`OPTIONS` maps each field name to its `Option` (experiments/option_spec.py), in field order. From it:
`add_options` writes every `precompute run` flag, `given_options` reads back those given, `config_from_options`
applies them over a preset, `check_options` runs every per-field check, and `option_words` writes a value
as command-line words (the inverse of parsing; experiments/rebuild.py builds the app's rebuild command with it).

To add an experiment option, add the field with its `option(...)` to experiments/config.py; nothing here
changes. Cross-field checks (min <= max, a split of the chosen data, paths, --out) are
precompute/validate.py's `validate_config`.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from experiments.config import ExperimentConfig
from experiments.option_spec import Option
from experiments.presets import get_preset

OPTIONS: dict[str, Option] = {f.name: f.metadata["option"] for f in fields(ExperimentConfig)}
DEFAULTS = ExperimentConfig()  # every field at its default


def flag_of(name: str) -> str:
    """The command-line flag of field `name`: 'class_lam' -> '--class-lam'."""
    return "--" + name.replace("_", "-")


def _takes_none(name: str) -> bool:
    """A scalar option whose default is None accepts the word `none` (`--train-data none`, `--limit none`)."""
    return not OPTIONS[name].many and getattr(DEFAULTS, name) is None


def _word_parser(name: str) -> Callable[[str], Any]:
    """The argparse type of a scalar option: its parser, taking `none` too where the default is None."""
    spec = OPTIONS[name]
    if not _takes_none(name):
        return spec.parse

    def parse(word: str) -> Any:
        return None if word == "none" else spec.parse(word)

    parse.__name__ = getattr(spec.parse, "__name__", "value")
    return parse


def add_options(parser: argparse.ArgumentParser) -> None:
    """One flag per command-line option of OPTIONS; an option not given is absent from the parsed namespace."""
    for name, spec in OPTIONS.items():
        if not spec.cli:
            continue
        default = getattr(DEFAULTS, name)
        shown = "" if "(default" in spec.help or default is None else f" (default: {_default_words(name, default)})"
        kwargs: dict[str, Any] = {"dest": name, "default": argparse.SUPPRESS, "type": _word_parser(name),
                                  "help": (spec.help + shown).replace("%", "%%")}  # argparse formats help with %
        if spec.many:  # an option with words (`none`, `all`) takes strings: given_options resolves them
            kwargs.update(nargs="+", type=str if spec.words else spec.parse)
        elif spec.switch:
            kwargs.update(nargs="?", const=True, metavar="on|off")
        elif isinstance(default, bool):
            kwargs.update(metavar="on|off")
        parser.add_argument(flag_of(name), **kwargs)


def _default_words(name: str, default: Any) -> str:
    if OPTIONS[name].switch:
        return "on" if default else "off"
    return " ".join(option_words(name, default)[1:]).replace("%", "%%")  # argparse formats help with %


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options given on the command line, as config values (tuples deduplicated, words resolved)."""
    given = {}
    for name, spec in OPTIONS.items():
        if not spec.cli or not hasattr(args, name):
            continue
        value = getattr(args, name)
        if spec.many:
            words = dict(spec.words)
            value = words[value[0]] if len(value) == 1 and value[0] in words else tuple(dict.fromkeys(value))
        given[name] = value
    return given


def config_from_options(preset: str | None, given: dict[str, Any]) -> ExperimentConfig:
    """A preset's values (none: the defaults), then the options given; the model fills in what both leave open.

    A preset's class_attacks are narrowed to the attack units of this run (`--attacks fmn` under cifar10-paper
    trains class maps for FMN only); image_size and input_norm default to the model's (input_norm: to what a
    project checkpoint records, if the file is here).
    """
    from core.attack_keys import attack_units
    from core.models.registry import MODELS

    values: dict[str, Any] = get_preset(preset) if preset else {}
    values.update(given)
    if "class_attacks" not in given and values.get("class_attacks") is not None:
        try:
            keys = {key for key, _, _ in attack_units(values.get("attacks", DEFAULTS.attacks),
                                                      values.get("eps", DEFAULTS.eps))}
        except ValueError:  # a bad --attacks or --eps: check_options reports it
            keys = set()
        values["class_attacks"] = tuple(k for k in values["class_attacks"] if k in keys)
    spec = MODELS.get(values.get("model", DEFAULTS.model))
    if spec is not None:
        values.setdefault("image_size", spec.input_size)
        if "input_norm" not in values:
            values["input_norm"] = _checkpoint_norm(values.get("checkpoint")) or spec.default_input_norm
    return ExperimentConfig(**values)


def _checkpoint_norm(path: str | None) -> str | None:
    """The input normalisation a project checkpoint records (third-party files record none)."""
    from core.models.checkpoints import CheckpointError, read_checkpoint

    if path is None or not os.path.isfile(path):
        return None
    try:
        return read_checkpoint(path).get("input_norm")
    except CheckpointError:
        return None  # reported properly when the model is built


def check_options(config: ExperimentConfig) -> None:
    """Every per-field check of OPTIONS, in field order (ValueError naming the flag); None values of options
    whose default is None are not checked (they mean "all" or "the default")."""
    for name, spec in OPTIONS.items():
        value = getattr(config, name)
        if spec.check is None or (value is None and getattr(DEFAULTS, name) is None):
            continue
        spec.check(value, flag_of(name))


def option_words(name: str, value: Any) -> list[str]:
    """`value` of option `name` as the command-line words that parse back to it: ['--lam', '0.02'],
    ['--bf16'], ['--attacks', 'none'], ['--class-attacks', 'all'], ['--train-data', 'none']."""
    spec, flag = OPTIONS[name], flag_of(name)
    if not spec.cli:
        raise ValueError(f"expected an option with a command-line flag, got {name!r}")
    for word, meaning in spec.words:
        if value == meaning and type(value) is type(meaning):
            return [flag, word]
    if spec.switch and value is True:
        return [flag]
    if value is None and _takes_none(name):
        return [flag, "none"]
    items = value if spec.many else (value,)
    return [flag, *(_word(item) for item in items)]


def _word(value: Any) -> str:
    """One value as a (shell-quoted) word: on/off for booleans, 8 for 8.0, repr-exact floats otherwise."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return shlex.quote(str(value))


__all__ = ["DEFAULTS", "OPTIONS", "add_options", "check_options", "config_from_options", "flag_of", "given_options",
           "option_words"]
