"""Which runs a comparison needs, and running them all through one pool of ZigZag workers.

A comparison of fold ``f`` against the original needs two runs on the same ``f`` images: the
FoldedCNN on one input and the original at batch ``f``. ``comparison_specs`` lists them;
``run_all`` exports each network once, prepares it for every accelerator and fusion setting,
and evaluates every distinct layer of every run in one pool (one progress bar).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from config.tasks import TaskError, get_bench_entry

from .hardware import AccelError
from .evaluate import LayerCache, SearchOptions, evaluate_jobs, prepare
from .network import NetworkSpec, build_network, export_onnx, graph_digest, ignored_op_types


@dataclass(frozen=True)
class RunSpec:
    network: NetworkSpec
    hardware: str
    fuse: bool


@dataclass
class RunResult:
    """Per costed layer: name, op_type, loop_sizes and ZigZag's metrics (see ``cme_metrics``)."""
    run: RunSpec
    search: SearchOptions
    layers: list[dict[str, Any]]
    ignored_ops: list[str]
    graph: str  # digest of the exported graph

    def total(self, metric: str) -> float:
        return sum(layer[metric] for layer in self.layers)


def comparison_specs(model: str, folds: list[int], *, band_limit: float | None = None,
                     efficientnet: bool = False, images: int | None = None) -> list[NetworkSpec]:
    """The networks comparing ``model``'s folds (and EfficientNet-style baseline) with its
    original on the same images: per fold ``f``, the original at batch ``f`` and the FoldedCNN
    on one input; with ``images`` = N, every network runs N images (fold f at batch N / f)."""
    try:
        entry = get_bench_entry(model)
    except TaskError as exc:
        raise AccelError(str(exc)) from None
    if images is not None and any(images % f for f in folds):
        raise AccelError(f"--images {images} must be a multiple of every fold {folds}")
    if entry.is_efficientnet:  # an EfficientNet name: it against the original
        n = images or 1
        return [NetworkSpec(entry.name, 1, n, "efficientnet", band_limit),
                NetworkSpec(entry.original_name, 1, n, "fold", band_limit)]
    specs = []
    for f in folds:
        n = images or f
        specs.append(NetworkSpec(model, 1, n, "fold", band_limit))
        if f > 1:
            specs.append(NetworkSpec(model, f, n // f, "fold", band_limit))
    if efficientnet and entry.efficientnet_name:
        specs.append(NetworkSpec(entry.efficientnet_name, 1, images or 1, "efficientnet", band_limit))
    return list(dict.fromkeys(specs))


def run_all(specs: list[NetworkSpec], hardware: list[str], fuses: list[bool],
            search: SearchOptions, *, cache_dir: Path | str | None, workers: int = 1,
            progress: bool = True, mapping_progress: bool = False,
            onnx_dir: Path | str | None = None,
            stats: dict[str, int] | None = None) -> list[RunResult]:
    """Evaluate every (network, accelerator, fusion) combination; results in that order."""
    prepared = []
    for spec in tqdm(specs, desc="export + parse", unit="net", disable=not progress or len(specs) < 3,
                     dynamic_ncols=True):
        model = build_network(spec)
        path = None if onnx_dir is None else Path(onnx_dir) / f"{spec.model.replace('/', '__')}_{spec.variant}_b{spec.batch}.onnx"
        proto = export_onnx(model, spec.batch, path)
        digest, ignored = graph_digest(proto), ignored_op_types(proto)
        for hw in hardware:
            for fuse in fuses:
                prepared.append((RunSpec(spec, hw, fuse), prepare(proto, hw, fuse=fuse, search=search),
                                 digest, ignored))
    jobs = [job for _, p, _, _ in prepared for job in p.jobs.values()]
    metrics = evaluate_jobs(jobs, LayerCache(cache_dir), workers=workers, progress=progress,
                            mapping_progress=mapping_progress, stats=stats)
    out = []
    for run, p, digest, ignored in prepared:
        layers = [{**{k: v for k, v in layer.items() if k != "key"}, **metrics[layer["key"]]}
                  for layer in p.layers]
        out.append(RunResult(run, search, layers, ignored, digest))
    return out
