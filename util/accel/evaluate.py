"""Run ZigZag on a workload layer by layer: its own stages, cached on disk, in parallel.

ZigZag's API (``zigzag.api.get_hardware_performance_zigzag``) chains parser -> workload
iterator -> [inter-layer locality] -> best-of-spatial-mappings -> best-of-temporal-mappings
(LOMA) -> cost model. This module runs the same stages in the same order, one layer at a
time, so that (1) a progress bar can advance per layer, (2) layers of identical shape and
memory placement are searched once (ZigZag's search is deterministic), (3) every layer's
result is cached on disk under a key of everything it depends on (a rerun is instant and an
interrupted run resumes), and (4) layers run in parallel processes. ZigZag's own totals are
the sums of its per-layer energies and latencies, which is what ``RunResult`` adds up;
``tests/test_accel.py`` checks that this reproduces the figures ZigZag's tests expect.

Inter-layer fusion (``fuse=True``) is ZigZag 3.9.1's ``exploit_data_locality`` mode:
``SearchInterLayerDataLocalityStage`` picks, per layer, the lowest memory that can hold the
layer's whole input and output feature maps (and, where that memory also holds weights, the
whole network's weights) and ``ExploitInterLayerDataLocalityStage`` removes the memories above
it, so an activation that fits stays on chip between layers instead of going through DRAM.
Its restrictions are listed in ``FUSION_NOTES``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, fields
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Iterable

from tqdm import tqdm

from util.records.atomic import atomic_write_json

from .hardware import AccelError, get_hardware, memory_classes, zigzag_module

OPTIMIZE = ("latency", "energy", "EDP")
TEMPORAL_MAPPING_TYPES = ("uneven", "even")
CACHE_VERSION = 2  # bump when the stored metrics change meaning

FUSION_NOTES = """\
ZigZag 3.9.1's inter-layer fusion is `exploit_data_locality` (SearchInterLayerDataLocalityStage +
ExploitInterLayerDataLocalityStage). It has no depth-first / tiled layer fusion (that is the separate
Stream framework, `stream-dse`); what it does and does not do:
* Layers still run one after the other, each over its whole feature map. "Fused" means a layer's
  whole output stays in the lowest memory that serves both it and the next layer's input, if the
  layer's whole input plus whole output fit there at once (memory size x its copies); otherwise
  that activation goes through the next level up, DRAM in the worst case. No tiles, no line
  buffers, no recomputation.
* Weights get ONE level for the whole network: the lowest memory that serves every array
  dimension and holds the weights of all layers together; else they stay in DRAM.
* Only chains: a layer whose output feeds two layers, or whose successor has two inputs (a
  residual Add), keeps its output in DRAM.
* ZigZag costs Conv, Gemm and MatMul nodes only. ReLU, max-pool and flatten are free: a fused
  conv keeps its pre-pool output on chip and the next layer reads the pooled map; the pool
  itself moves no data.
* The network's input and output: ZigZag's search may leave the first layer's input and the last
  layer's output on chip, and its optional `update_mem_level_for_loading_data` has no effect
  after the search (it only ever lowers a level). With `io_in_dram` (our default) we put those
  two back in DRAM, so fused and unfused runs read the same images from DRAM and write the same
  logits to it; `io_in_dram=False` is ZigZag's own behaviour (used to check its test figures).
"""


@dataclass(frozen=True)
class SearchOptions:
    """How hard and for what ZigZag searches mappings, and how it treats layer boundaries."""
    opt: str = field(default="latency", metadata={
        "help": "criterion the best mapping of a layer minimises: " + ", ".join(OPTIMIZE)})
    lpf_limit: int = field(default=6, metadata={
        "help": "LOMA's loop-prime-factor limit: the temporal orderings tried grow about "
                "factorially with it (ZigZag's default 6; 4 searched our networks 1-5x faster "
                "with totals within 2%%)"})
    spatial_mappings: int = field(default=3, metadata={
        "help": "spatial mappings generated and searched per layer (ZigZag's default 3)"})
    temporal_mapping_type: str = field(default="uneven", metadata={
        "help": "LOMA's memory allocation: " + ", ".join(TEMPORAL_MAPPING_TYPES)})
    io_in_dram: bool = field(default=True, metadata={
        "help": "with --fuse: the network's input and logits live in DRAM (ZigZag alone may "
                "leave them on chip)"})

    def __post_init__(self) -> None:
        if self.opt not in OPTIMIZE:
            raise AccelError(f"bad opt {self.opt!r}; valid: {', '.join(OPTIMIZE)}")
        if self.temporal_mapping_type not in TEMPORAL_MAPPING_TYPES:
            raise AccelError(f"bad temporal mapping type {self.temporal_mapping_type!r}; "
                             f"valid: {', '.join(TEMPORAL_MAPPING_TYPES)}")
        if self.lpf_limit < 1 or self.spatial_mappings < 1:
            raise AccelError("lpf_limit and spatial_mappings must be >= 1")


def add_search_args(parser: Any) -> None:
    """Add one ``--flag`` per ``SearchOptions`` field (type, default and help from the field)."""
    group = parser.add_argument_group("mapping search (ZigZag)")
    for f in fields(SearchOptions):
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction,
                               default=f.default, help=f.metadata["help"])
        else:
            group.add_argument(flag, dest=f.name, type=int if f.type in ("int", int) else str,
                               default=f.default, help=f"{f.metadata['help']} (default {f.default})")


def search_options_from_args(args: Any) -> SearchOptions:
    return SearchOptions(**{f.name: getattr(args, f.name) for f in fields(SearchOptions)})


# ----------------------------------------------------------------------------- one layer
@dataclass
class LayerJob:
    """Everything one layer's search needs; picklable (sent to worker processes)."""
    key: str
    hardware: str
    layer: Any            # zigzag LayerNode
    accelerator: Any      # zigzag Accelerator (the full hierarchy; fusion trims it per layer)
    search: SearchOptions
    mem_update_list: dict | None = None  # fusion: per layer, top memory level per operand
    mem_update_weight: int | None = None
    show_mapping_progress: bool = False


def _stages(search: SearchOptions, fused: bool) -> list:
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.exploit_data_locality_stages import ExploitInterLayerDataLocalityStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
    from zigzag.stages.results.reduce_stages import (MinimalEDPStage, MinimalEnergyStage,
                                                     MinimalLatencyStage)

    best = {"latency": MinimalLatencyStage, "energy": MinimalEnergyStage,
            "EDP": MinimalEDPStage}[search.opt]
    return ([ExploitInterLayerDataLocalityStage] if fused else []) + [
        best, SpatialMappingGeneratorStage, best, TemporalMappingGeneratorStage, CostModelStage]


def evaluate_layer(job: LayerJob) -> dict[str, Any]:
    """Search one layer's best mapping with ZigZag's stages and return its metrics."""
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.stages.main import MainStage

    logging.getLogger("zigzag").setLevel(logging.ERROR)
    fused = job.mem_update_list is not None
    extra = dict(mem_update_list=job.mem_update_list,
                 mem_update_weight=job.mem_update_weight) if fused else {}
    answers = MainStage(
        _stages(job.search, fused), accelerator=job.accelerator, layer=job.layer,
        loma_lpf_limit=job.search.lpf_limit, loma_show_progress_bar=job.show_mapping_progress,
        nb_mappings_generated=job.search.spatial_mappings,
        enable_mix_spatial_mapping_generation=False,
        # as ZigZag's API: data read again from the innermost memory while it stays at the
        # memory's output pins is not a new access
        access_same_data_considered_as_no_access=True,
        temporal_mapping_type=TemporalMappingType(job.search.temporal_mapping_type),
        **extra).run()
    cme = answers[0][0]
    return cme_metrics(cme, job.hardware)


def cme_metrics(cme: Any, hardware: str) -> dict[str, Any]:
    """The figures of one layer's best cost-model evaluation, as plain numbers.

    energy_by_memory: pJ per memory of the description (all operands); energy_by_operand: memory
    pJ per operand (W weights, I input activations, O outputs and partial sums); dram_bits: bits
    moved between DRAM and the chip (accesses x the port's word width), also by operand;
    top_memory: where each operand lives for this layer (DRAM unless fusion kept it on chip).
    """
    from zigzag.hardware.architecture.memory_port import DataDirection

    acc, layer = cme.accelerator, cme.layer
    classes = memory_classes(hardware)
    by_memory: dict[str, float] = defaultdict(float)
    by_operand: dict[str, float] = defaultdict(float)
    dram_by_operand: dict[str, float] = defaultdict(float)
    for layer_op, energies in cme.mem_energy_breakdown.items():
        mem_op = layer.memory_operand_links.layer_to_mem_op(layer_op)
        for lvl, energy in enumerate(energies):
            by_memory[acc.get_memory_level(mem_op, lvl).memory_instance.name] += float(energy)
            by_operand[str(layer_op)] += float(energy)
    for layer_op, per_level in cme.memory_word_access.items():
        mem_op = layer.memory_operand_links.layer_to_mem_op(layer_op)
        for lvl, accesses in enumerate(per_level):
            level = acc.get_memory_level(mem_op, lvl)
            if classes[level.memory_instance.name] != "dram":
                continue
            for direction in DataDirection:
                count = accesses.get(direction)
                if count:
                    dram_by_operand[str(layer_op)] += count * level.get_max_bandwidth(mem_op, direction)
    top = {}
    for layer_op in layer.layer_operands:
        mem_op = layer.memory_operand_links.layer_to_mem_op(layer_op)
        top[str(layer_op)] = acc.mem_hierarchy_dict[mem_op][-1].memory_instance.name
    return {
        "macs": int(layer.total_mac_count),
        "latency_cycles": float(cme.latency_total2),
        "ideal_cycles": float(cme.ideal_cycle),
        "onload_cycles": float(cme.latency_total1 - cme.latency_total0),
        "offload_cycles": float(cme.latency_total2 - cme.latency_total1),
        "energy_pJ": float(cme.energy_total),
        "energy_mac_pJ": float(cme.mac_energy),
        "energy_by_memory": dict(by_memory),
        "energy_by_operand": dict(by_operand),
        "dram_bits": sum(dram_by_operand.values()),
        "dram_bits_by_operand": dict(dram_by_operand),
        "util_spatial": float(cme.mac_spatial_utilization),
        "util": float(cme.mac_utilization2),
        "top_memory": top,
    }


# ----------------------------------------------------------------------------- a run
def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def layer_signature(layer: Any) -> dict[str, str]:
    """What ZigZag's search of a layer depends on (not its id or name)."""
    attrs = ("type", "equation", "dimension_relations", "layer_dim_sizes", "operand_precision",
             "padding", "constant_operands", "spatial_mapping", "spatial_mapping_hint",
             "memory_operand_links", "temporal_ordering", "pr_layer_dim_sizes")
    return {a: str(getattr(layer, a)) for a in attrs}


def _file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class PreparedRun:
    """A workload parsed for one accelerator: per costed layer, its name and its job's key."""
    layers: list[dict[str, Any]]   # name, op_type, loop_sizes, key
    jobs: dict[str, LayerJob]      # key -> job (one per distinct key)


def prepare(workload: Any, hardware: str, *, fuse: bool, search: SearchOptions,
            mapping_yaml: Path | str | None = None) -> PreparedRun:
    """Parse ``workload`` (ONNX model or path) for ``hardware`` and make one job per distinct layer.

    With ``fuse`` the inter-layer search runs here, over the whole network, and every layer's
    chosen memory levels become part of its job and key.
    """
    zz = zigzag_module()
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.exploit_data_locality_stages import SearchInterLayerDataLocalityStage
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage

    from .network import costed_layers, parse_workload

    hw = get_hardware(hardware)
    mapping_yaml = Path(mapping_yaml or hw.mapping_yaml)
    accelerator = AcceleratorParserStage.parse_accelerator(str(hw.accelerator_yaml))
    wl = parse_workload(workload, mapping_yaml)
    layers = costed_layers(wl)
    mem_update_list = mem_update_weight = None
    if fuse:
        search_stage = SearchInterLayerDataLocalityStage([CostModelStage], accelerator=accelerator,
                                                         workload=wl)
        search_stage.update_top_mem_level()
        mem_update_list, mem_update_weight = search_stage.mem_update_list, search_stage.mem_update_weight
        if search.io_in_dram:
            order = list(search_stage.workload_no_dummy.topological_sort())
            first, last = order[0], order[-1]
            _force_top(mem_update_list, first, "act", search_stage.top_mem_level_act)
            _force_top(mem_update_list, last, "out", search_stage.top_mem_level_output)
    common = (CACHE_VERSION, zz.__version__, _file_digest(hw.accelerator_yaml),
              _file_digest(mapping_yaml), asdict(search), fuse)
    out, jobs = [], {}
    for layer in layers:
        placement = None
        if fuse:
            placement = ({str(k): v for k, v in mem_update_list[layer.id].items()}, mem_update_weight)
        key = _digest(common, layer_signature(layer), placement)
        out.append({"name": layer.name, "op_type": layer.type,
                    "loop_sizes": str(layer.layer_dim_sizes), "key": key})
        if key not in jobs:
            jobs[key] = LayerJob(key, hardware, layer, accelerator, search,
                                 mem_update_list, mem_update_weight)
    return PreparedRun(out, jobs)


def _force_top(mem_update_list: dict, layer: Any, which: str, top_level: int) -> None:
    """Put a layer's input (``act``) or output (``out``) at the top memory level (DRAM)."""
    op = layer.get_act_layer_op() if which == "act" else layer.output_operand
    mem_op = layer.memory_operand_links.layer_to_mem_op(op)
    mem_update_list[layer.id][mem_op] = top_level


# ----------------------------------------------------------------------------- cache + pool
class LayerCache:
    """One JSON file per layer key under ``root`` (written atomically)."""

    def __init__(self, root: Path | str | None) -> None:
        self.root = Path(root) if root is not None else None

    def _path(self, key: str) -> Path:
        assert self.root is not None
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        if self.root is None:
            return None
        path = self._path(key)
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def put(self, key: str, metrics: dict[str, Any]) -> None:
        if self.root is not None:
            atomic_write_json(self._path(key), metrics)


def _init_worker() -> None:
    logging.getLogger("zigzag").setLevel(logging.ERROR)
    logging.disable(logging.WARNING)


def evaluate_jobs(jobs: Iterable[LayerJob], cache: LayerCache, *, workers: int = 1,
                  progress: bool = True, mapping_progress: bool = False,
                  stats: dict[str, int] | None = None) -> dict[str, dict]:
    """Metrics of every job, from the cache or from ZigZag (``workers`` processes).

    ``stats`` (if given) receives ``searched`` and ``cached`` layer counts."""
    jobs = list({j.key: j for j in jobs}.values())
    results: dict[str, dict] = {}
    todo = []
    for job in jobs:
        hit = cache.get(job.key)
        if hit is not None:
            results[job.key] = hit
        else:
            todo.append(job)
    if stats is not None:
        stats.update(searched=len(todo), cached=len(results))
    if not todo:
        return results
    bar = tqdm(total=len(todo), desc="ZigZag layers", unit="layer", disable=not progress,
               dynamic_ncols=True)
    try:
        if workers <= 1 or len(todo) == 1:
            _init_worker()
            for job in todo:
                job.show_mapping_progress = mapping_progress
                results[job.key] = evaluate_layer(job)
                cache.put(job.key, results[job.key])
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(todo)),
                                     mp_context=get_context("spawn"),
                                     initializer=_init_worker) as pool:
                futures = {pool.submit(evaluate_layer, job): job.key for job in todo}
                try:
                    for fut in as_completed(futures):
                        key = futures[fut]
                        results[key] = fut.result()
                        cache.put(key, results[key])
                        bar.update()
                except BrokenProcessPool:
                    raise AccelError(f"a ZigZag worker process died (killed or out of memory) after "
                                     f"{bar.n} of {len(todo)} layers; rerun the same command to "
                                     "resume from the cache") from None
    finally:
        bar.close()
    return results


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))
