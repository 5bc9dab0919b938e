"""The accelerators ZigZag ships (``zigzag/inputs/hardware``) and the mapping file each goes with.

One owner for the fact "which shipped files describe accelerator X" and for how a memory of a
description is classed (per-PE register, on-chip SRAM, DRAM), so every table splits energy the
same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any


class AccelError(ValueError):
    """A user mistake in the accelerator evaluation; the message is one line that says the fix."""


def zigzag_module() -> Any:
    """Import ZigZag, or a one-line error that says how to install it."""
    try:
        import zigzag
    except ImportError:
        raise AccelError("zigzag-dse is not installed: run `bash util/setup_env.sh` "
                         "(requirements.txt pins zigzag-dse==3.9.1 and six)") from None
    return zigzag


def zigzag_inputs() -> Path:
    """The ``inputs/`` folder of the installed ZigZag (hardware, mapping, workload examples)."""
    return Path(zigzag_module().__file__).resolve().parent / "inputs"


@dataclass(frozen=True)
class Hardware:
    """A shipped accelerator: its description, the mapping file ZigZag's own tests pair it with."""
    name: str
    accelerator_file: str
    mapping_file: str
    summary: str

    @property
    def accelerator_yaml(self) -> Path:
        return zigzag_inputs() / "hardware" / self.accelerator_file

    @property
    def mapping_yaml(self) -> Path:
        return zigzag_inputs() / "mapping" / self.mapping_file


HARDWARE: dict[str, Hardware] = {h.name: h for h in (
    Hardware("eyeriss_like", "eyeriss_like.yaml", "default.yaml",
             "14x12 PEs, per-PE register files (64 B inputs, 64 B weights, 16 B outputs), "
             "8 KB output / 64 KB weight / 1 MB activation SRAM, DRAM; 0.5 pJ per MAC"),
    Hardware("tpu_like", "tpu_like.yaml", "tpu_like.yaml",
             "32x32 weight-stationary systolic array, 128 B weight and 2 B output registers "
             "per PE, 2 MB activation SRAM, DRAM; 0.04 pJ per MAC"),
    Hardware("edge_tpu_like", "edge_tpu_like.yaml", "edge_tpu_like.yaml",
             "8x8x4x4 MACs, 1 B / 2 B registers, 32 KB and 2 MB SRAM, DRAM; 0.04 pJ per MAC"),
    Hardware("ascend_like", "ascend_like.yaml", "ascend_like.yaml", "16x16x2x2 MACs, 1 B / 2 B registers, 64 KB input and weight buffers, 256 KB output, "
             "1 MB activation and 1 MB weight SRAM, DRAM; 0.04 pJ per MAC"),
    Hardware("tesla_npu_like", "tesla_npu_like.yaml", "tesla_npu_like.yaml",
             "32x32x4 MACs, 1 B / 4 B registers, 1 KB input and weight buffers, 1 MB activation "
             "and 1 MB weight SRAM, DRAM; 0.04 pJ per MAC"),
    Hardware("meta_prototype", "meta_prototype.yaml", "meta_prototype_like.yaml",
             "32x2x4x4 MACs, 1 B / 2 B registers, 64 KB and 32 KB buffers, 1 MB activation and "
             "1 MB weight SRAM, DRAM; 0.04 pJ per MAC"),
)}
DEFAULT_HARDWARE = ("eyeriss_like", "tpu_like")

# How a memory of an accelerator description is classed in every table.
MEMORY_CLASSES = ("reg", "sram", "dram")


def get_hardware(name: str) -> Hardware:
    """The shipped accelerator called ``name``; a one-line error listing the valid names."""
    if name not in HARDWARE:
        raise AccelError(f"unknown hardware {name!r}; valid: {', '.join(HARDWARE)}")
    return HARDWARE[name]


@lru_cache(maxsize=None)
def memory_classes(name: str) -> dict[str, str]:
    """Memory name -> ``dram`` (the top of the hierarchy: no memory above it), ``reg``
    (replicated across the array: one per PE or per group of PEs) or ``sram`` (a single
    on-chip buffer that serves the whole array)."""
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage

    acc = AcceleratorParserStage.parse_accelerator(str(get_hardware(name).accelerator_yaml))
    hierarchy = acc.memory_hierarchy
    out = {}
    for level in hierarchy.mem_level_list:
        mem = level.memory_instance
        if hierarchy.out_degree(level) == 0:
            out[mem.name] = "dram"
        elif level.unroll_count > 1:
            out[mem.name] = "reg"
        else:
            out[mem.name] = "sram"
    return out
