"""Registry network -> ONNX graph at a fair batch, and its MAC count (ZigZag's and thop's).

A fair per-image comparison runs every network on the same images: a folded network with fold
``f`` takes ``f`` images per input, so it runs one input while the original runs a batch of
``f`` images (``NetworkSpec.batch``). ZigZag then sees the same work per image in both.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from config.tasks import TaskError, get_bench_entry
from models import build_model, model_input_shape

from .hardware import AccelError, zigzag_module

if TYPE_CHECKING:  # onnx is imported where it is used
    import onnx

ONNX_OPSET = 13


@dataclass(frozen=True)
class NetworkSpec:
    """One network of the comparison and the batch it runs at.

    model: a benchmark name (``config.tasks.bench_entries``), e.g. ``game_lol/goldnumber-fraction``
        or ``noscope_coral``; its EfficientNet-style baseline is ``scaling="efficientnet"``.
    fold: 1 = the original; ``f`` > 1 = the FoldedCNN (one input holds ``f`` images).
    batch: inputs per run: ``images / images_per_input`` (the original at fold ``f``'s
        comparison runs ``f`` images, so batch ``f``).
    band_limit: compression ratio of a band-limited network (``build_model(band_limit=)``).
    """
    model: str
    fold: int = 1
    batch: int = 1
    scaling: str = "fold"
    band_limit: float | None = None

    @property
    def images_per_input(self) -> int:
        return self.fold if self.scaling == "fold" else 1

    @property
    def images(self) -> int:
        """Images one run processes (per-image figures divide by this)."""
        return self.batch * self.images_per_input

    @property
    def variant(self) -> str:
        """Short name of the network variant: ``original``, ``fold2``, ``efficientnet``, ..."""
        base = ("efficientnet" if self.scaling == "efficientnet"
                else "original" if self.fold == 1 else f"fold{self.fold}")
        return base if self.band_limit is None else f"{base}-band{self.band_limit:g}"


def original_for(spec: NetworkSpec) -> NetworkSpec:
    """The original network running the same images as ``spec`` (its fair reference)."""
    try:
        original = get_bench_entry(spec.model).original_name
    except TaskError as exc:
        raise AccelError(str(exc)) from None
    return NetworkSpec(original, 1, spec.images, "fold", spec.band_limit)


def build_network(spec: NetworkSpec) -> nn.Module:
    """The registry network of ``spec`` (eval mode), or a one-line error for a bad request."""
    try:
        entry = get_bench_entry(spec.model)
    except TaskError as exc:
        raise AccelError(str(exc)) from None
    kwargs = {}
    if spec.band_limit is not None:
        kwargs["band_limit"] = spec.band_limit
    try:
        model = build_model(entry.task, spec.fold, scaling=spec.scaling, **kwargs)
    except TaskError as exc:
        raise AccelError(str(exc)) from None
    return model.eval()


def example_input(model: nn.Module, batch: int) -> torch.Tensor:
    return torch.zeros(batch, *model_input_shape(model))


def export_onnx(model: nn.Module, batch: int, path: Path | str | None = None) -> onnx.ModelProto:
    """The shape-inferred ONNX graph of ``model`` at ``batch`` inputs (saved to ``path`` if given).

    ZigZag reads Conv, Gemm and MatMul nodes and takes every other node (ReLU, max-pool,
    flatten) as free; shapes come from ONNX shape inference. Band-limited convs are exported
    in the form ZigZag can cost (``band_export``: their DFT products as MatMuls and a grouped
    Conv, the filter spectrum precomputed).
    """
    import onnx

    from .band_export import export_form

    model = export_form(model, example_input(model, batch))
    buf = io.BytesIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(model, (example_input(model, batch),), buf, dynamo=False,
                          opset_version=ONNX_OPSET, input_names=["images"], output_names=["logits"])
    proto = onnx.load_from_string(buf.getvalue())
    _inline_shared_initializers(proto)
    proto = onnx.shape_inference.infer_shapes(proto)
    if path is not None:
        from util.records.atomic import atomic_path

        with atomic_path(path) as tmp:
            onnx.save(proto, str(tmp))
    return proto


def _inline_shared_initializers(proto) -> None:
    """Replace ``Identity(initializer)`` nodes by a copy of the initializer, in place.

    Why: the exporter shares equal initializers (all-zero biases of a fresh model) through
    Identity nodes; ZigZag's parser then takes a conv fed by such a node for a layer with two
    variable inputs (weights not constant), which changes how it places weights in memory.
    """
    inits = {i.name: i for i in proto.graph.initializer}
    keep = []
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy_ = proto.graph.initializer.add()
            copy_.CopyFrom(inits[node.input[0]])
            copy_.name = node.output[0]
        else:
            keep.append(node)
    del proto.graph.node[:]
    proto.graph.node.extend(keep)


def graph_digest(proto: onnx.ModelProto) -> str:
    """SHA-256 of the graph's structure and shapes, not of its weight values (which ZigZag does
    not read): two exports of the same architecture share a digest whatever the seed."""
    stripped = copy.deepcopy(proto)
    for init in stripped.graph.initializer:
        init.ClearField("raw_data")
        for field in ("float_data", "int32_data", "int64_data", "double_data"):
            init.ClearField(field)
    stripped.ClearField("producer_version")
    return hashlib.sha256(stripped.graph.SerializeToString(deterministic=True)).hexdigest()


def parse_workload(proto: onnx.ModelProto, mapping_yaml: Path | str) -> Any:
    """ZigZag's workload graph of an ONNX model (its own parser, the mapping file's layer hints)."""
    zigzag_module()
    from zigzag.parser.onnx.onnx_model_parser import ONNXModelParser

    with _quiet_zigzag():
        return ONNXModelParser(proto, str(mapping_yaml)).run()


def costed_layers(workload: Any) -> list:
    """The layers ZigZag costs (LayerNodes), in topological order."""
    from zigzag.workload.layer_node import LayerNode

    return [n for n in workload.topological_sort() if isinstance(n, LayerNode)]


def ignored_op_types(proto: onnx.ModelProto) -> list[str]:
    """ONNX op types in the graph that ZigZag treats as free (not Conv, Gemm or MatMul)."""
    costed = {"Conv", "QLinearConv", "Gemm", "MatMul"}
    return sorted({n.op_type for n in proto.graph.node if n.op_type not in costed})


@contextlib.contextmanager
def _quiet_zigzag():
    """ZigZag logs every clipped unrolling as a warning; keep errors only."""
    log = logging.getLogger("zigzag")
    old = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(old)


# ----------------------------------------------------------------------------- MAC counts
def zigzag_macs(proto: onnx.ModelProto, mapping_yaml: Path | str) -> int:
    """Multiply-accumulates of the whole graph as ZigZag counts them (sum over its layers,
    products only: a bias or BatchNorm folded into a conv adds nothing)."""
    return sum(int(layer.total_mac_count) for layer in costed_layers(parse_workload(proto, mapping_yaml)))


def thop_macs(model: nn.Module, batch: int) -> tuple[int, int]:
    """(all MACs, MACs of Conv2d and Linear modules) that thop counts for ``batch`` inputs.

    The paper's FLOP tables use thop (FLOPs = 2 x MACs). thop counts a conv's products only
    (no bias term) and also counts BatchNorm and pooling, which an accelerator folds into the
    conv or gets for free; ZigZag costs Conv and Gemm nodes, so its count equals thop's
    Conv2d + Linear count, and thop's total wherever the network has nothing else.
    """
    from thop import profile

    model = copy.deepcopy(model).eval()
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total, _, info = profile(model, inputs=(example_input(model, batch),), verbose=False,
                                 ret_layer_info=True)

    def walk(tree: dict, module: nn.Module) -> int:
        ops = 0
        for name, (m_ops, _, sub) in tree.items():
            child = getattr(module, name)
            ops += int(round(m_ops)) if isinstance(child, (nn.Conv2d, nn.Linear)) else walk(sub, child)
        return ops

    return int(round(total)), walk(info, model)
