"""The `python -m precompute run` command that rebuilds an experiment: shown by the app beside an
experiment whose maps are not in this cache, and tested to parse back to the same configuration.

The command is the experiment's preset (when its name is one), then every option the experiment sets to
another value than that preset would give, in field order. Run settings (device, batch sizes) are left
out: they change no stored number, and the machine that rebuilds picks its own.
"""

from __future__ import annotations

from experiments.config import ExperimentConfig
from experiments.option_spec import RUN, STAGES
from experiments.options import OPTIONS, config_from_options, option_words
from experiments.presets import PRESETS

COMMAND = "python -m precompute run"

# options the command carries: every one with a flag, but run settings
CARRIED = tuple(name for name, spec in OPTIONS.items() if spec.cli and spec.hash != RUN)


def rebuild_options(config: ExperimentConfig) -> tuple[str | None, dict]:
    """(preset or None, {option: value}) that `precompute run` turns back into `config`'s experiment.

    Options are added one at a time, the first (in field order) where the configuration built so far
    differs from `config`: an option such as --model moves what the model fills in (image size, input
    normalisation), which then needs no option of its own. With a checkpoint, input_norm is always given:
    the file that `run` would read it from may differ on another machine.
    """
    preset = config.name if config.name in PRESETS else None
    given = {"input_norm": config.input_norm} if config.checkpoint is not None else {}
    for _ in CARRIED:  # each round fixes one more option: at most one round per option
        built = config_from_options(preset, given)
        differing = [name for name in CARRIED if not _same(name, getattr(built, name), getattr(config, name))]
        if not differing:
            break
        given[differing[0]] = getattr(config, differing[0])
    return preset, {name: given[name] for name in CARRIED if name in given}


def _same(name: str, built: object, wanted: object) -> bool:
    """Equal values; tuples of a STAGES option as sets (the manifest keeps the attacks and budgets of all runs
    sorted, their order changes no stage)."""
    if OPTIONS[name].hash == STAGES and isinstance(built, tuple) and isinstance(wanted, tuple):
        return sorted(built) == sorted(wanted)
    return built == wanted


def rebuild_command(config: ExperimentConfig) -> str:
    """The command line that rebuilds `config`'s experiment in full, e.g. 'python -m precompute run --preset demo'."""
    preset, given = rebuild_options(config)
    words = [f"--preset {preset}"] if preset else []
    words += [" ".join(option_words(name, value)) for name, value in given.items()]
    return " ".join([COMMAND, *words])


__all__ = ["CARRIED", "COMMAND", "rebuild_command", "rebuild_options"]
