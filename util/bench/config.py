"""What defines one measurement of the inference benchmark: ``BenchConfig``, its one set of
defaults, and the command-line flags derived from its fields.

Each field that is a setting carries its help (and choices) in its metadata; commands add
the flags of the fields they expose with ``add_config_arguments`` (``--num-warmup`` for
``num_warmup``; ``underscore_aliases`` adds ``--num_warmup`` too, as the released infer.py
spelled them), read them back with ``config_from_args`` (a flag not given keeps the
dataclass default), and ``config_to_argv`` writes a config as those flags again (the bulk
runner's worker processes). Precisions and bytes per element are here too: one table.
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

import torch

from models import CompoundScaling
from models.bandlimit import ALGORITHMS
from util.bench.backends import BACKENDS

PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
BYTES_PER_ELEMENT = {name: dtype.itemsize for name, dtype in PRECISIONS.items()}
DEVICES = ("cuda", "cpu", "auto")
BAND_ALGORITHMS = (*ALGORITHMS, "auto")


def bytes_per_element(precision: str) -> int:
    """Bytes per element of ``precision`` (weights and activations alike)."""
    try:
        return BYTES_PER_ELEMENT[precision]
    except KeyError:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}") from None


def precision_of_bytes(nbytes: int) -> str | None:
    """The first precision with ``nbytes`` per element (2 -> fp16, 4 -> fp32), else None."""
    return next((p for p, b in BYTES_PER_ELEMENT.items() if b == nbytes), None)


def _setting(default: Any, help: str, **argparse_kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass(frozen=True)
class BenchConfig:
    """Everything that defines one measurement (saved with its result)."""
    model: str
    fold: int = 1
    do_fold: bool = True  # False: the released inference.py's FOLD without --do_fold (BenchEntry.variant)
    batch_images: int = _setting(1024, "images per batch; a folded model gets N // f inputs")
    num_warmup: int = _setting(100, "warm-up iterations")
    num_iteration: int = _setting(10000, "timed iterations per trial")
    trials: int = _setting(5, "timed trials; the median is reported")
    backend: str = _setting("auto", "inference backend", choices=BACKENDS)
    precision: str = _setting("fp16", "weights and inputs dtype", choices=tuple(PRECISIONS))
    channels_last: bool = _setting(False, "NHWC memory format for weights and inputs")
    channel_align: int = _setting(1, "round every internal width up to a multiple of this "
                                     "(1 = paper widths)")
    pad_input: bool = _setting(False, "zero-pad the f*C input channels up to a multiple of "
                                      "the channel alignment")
    device: str = _setting("auto", "cuda, cpu or auto (cuda when present, else cpu, which the "
                                   "result says)", choices=DEVICES)
    end_to_end: bool = _setting(False, "also time uint8 host frames -> GPU -> normalise -> fold "
                                       "-> forward -> unfold -> argmax")
    seed: int = _setting(0, "seed of weights and random input")
    # EfficientNet entries: the multipliers of the compound scaling (steps = FOLD - 1)
    compound: CompoundScaling = CompoundScaling()
    band_limit: float | None = _setting(None, "benchmark the band-limited CNN discarding CR%% of "
                                              "each conv's spectrum (default: ordinary convs)",
                                        type=float, metavar="CR")
    band_algorithm: str = _setting("auto", "algorithm of the band-limited convs (auto: dft)",
                                   choices=BAND_ALGORITHMS)


SETTINGS = tuple(f.name for f in fields(BenchConfig) if "help" in f.metadata)
_FIELDS = {f.name: f for f in fields(BenchConfig)}


def flag(name: str) -> str:
    """The command-line flag of setting ``name``."""
    return "--" + name.replace("_", "-")


def default_of(name: str) -> Any:
    f = _FIELDS[name]
    return f.default if f.default is not MISSING else None


def add_config_arguments(parser: argparse.ArgumentParser, names: tuple[str, ...] = SETTINGS, *,
                         defaults: dict[str, Any] | None = None, underscore_aliases: bool = False,
                         help_suffix: dict[str, str] | None = None) -> None:
    """Add the flag of each setting in ``names``: its type, choices and help from the field.

    A flag not given parses as None, so ``config_from_args`` can tell it from a given one;
    ``defaults`` overrides the dataclass default of a command (shown in the help and
    applied by ``config_from_args``), ``help_suffix`` adds a note (e.g. the env variable).
    """
    defaults = {**getattr(parser, "_config_defaults", {}), **(defaults or {})}
    for name in names:
        f = _FIELDS[name]
        meta = dict(f.metadata)
        default = defaults.get(name, default_of(name))
        opts = [flag(name)] + ([f"--{name}"] if underscore_aliases and "_" in name else [])
        text = (meta.pop("help") + ("" if default is None else f" (default {default})")
                + (help_suffix or {}).get(name, ""))
        if isinstance(default_of(name), bool):
            parser.add_argument(*opts, dest=name, action=argparse.BooleanOptionalAction,
                                default=None, help=text)
            continue
        kind = meta.pop("type", type(default_of(name)))
        parser.add_argument(*opts, dest=name, type=kind, default=None, help=text, **meta)
    parser._config_defaults = defaults  # read back by config_from_args through the namespace
    parser.set_defaults(_config_defaults=defaults)


def config_from_args(args: argparse.Namespace, **given: Any) -> BenchConfig:
    """A BenchConfig of ``args``' settings (those not given: the command's default, else the
    dataclass's) and ``given`` (model, fold, ... set by the command itself)."""
    defaults = getattr(args, "_config_defaults", {})
    values = {}
    for name in SETTINGS:
        if name in given:
            continue
        value = getattr(args, name, None)
        if value is None:
            value = defaults.get(name, default_of(name))
        values[name] = value
    return BenchConfig(**values, **given)


def config_to_argv(cfg: BenchConfig, names: tuple[str, ...] = SETTINGS) -> list[str]:
    """The flags that ``config_from_args`` reads back into ``cfg``'s ``names``."""
    argv: list[str] = []
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool):
            argv.append(flag(name) if value else "--no-" + flag(name)[2:])
        elif value is not None:
            argv += [flag(name), str(value)]
    return argv
