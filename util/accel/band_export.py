"""Band-limited convolutions in a form ZigZag can cost: every product of the "dft" path as a
2-D-weight MatMul or a grouped 1 x 1 Conv, the filter spectrum precomputed.

Why: ``models/bandlimit.py``'s ``dft_conv`` puts constant DFT matrices on the left of its
matmuls (``x_rows @ a``) and mixes channels with a batched matmul whose per-frequency weights
come from the filter at run time. ZigZag 3.9.1's MatMul/Gemm parser takes ``input[0]`` as the
activation ``I[b][h][d][c]`` and ``input[1]`` as ``W[c][k]``: it needs both to have the output's
rank (a constant 2-D left operand fails its assert), and a *constant* weight never carries the
batch dims (a per-frequency weight stack would be costed as one shared matrix). So the export
form

* keeps every DFT matrix on the right (``a^T @ x_rows^T`` instead of ``x_rows @ a``, transposes
  and reshapes being free in ZigZag), as ONNX initializers;
* mixes channels per kept frequency with a grouped 1 x 1 Conv (one group per frequency,
  ``W[g][k][c]``), whose weights, the filter's band spectrum, are computed once here.

It computes what ``dft_conv`` computes (``tests/test_accel.py`` checks it against the module)
with the same dense real products, so ZigZag's MAC count equals ``dft_macs``. The "fft"
algorithm has no such form: ZigZag costs Conv/Gemm/MatMul only and an FFT is none of them.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from models.bandlimit import Band, BandLimitedConv2d, _dft_matrices, band_layers

from .hardware import AccelError


def _output_hw(layer: BandLimitedConv2d, band: Band) -> tuple[int, int]:
    (lh, lw), (kh, kw) = band.size, layer.kernel_size
    return (lh - kh) // layer.stride[0] + 1, (lw - kw) // layer.stride[1] + 1


def dft_macs(layer: BandLimitedConv2d, in_hw: tuple[int, int], batch: int = 1) -> int:
    """Multiply-accumulates of one ``dft_conv`` forward on ``batch`` inputs of ``in_hw``, from its
    matrix shapes: column transform, row transform, channel mixing (4 real products per complex
    one), inverse rows, inverse columns. The filter spectrum depends on weights only: not counted."""
    h, w = in_hw
    band = layer.band_for(h, w)
    r, c = band.rows, band.cols
    ho, wo = _output_hw(layer, band)
    ci, co = layer.in_channels, layer.out_channels
    return batch * (ci * h * w * 2 * c + ci * c * 2 * h * 2 * r + r * c * 2 * ci * 2 * co
                    + co * c * 2 * r * 2 * ho + co * ho * 2 * c * wo)


class DftConvExport(nn.Module):
    """Export-only ``BandLimitedConv2d`` ("dft") at one input size: the same outputs, with
    every product in a shape ZigZag parses (module docstring)."""

    def __init__(self, layer: BandLimitedConv2d, in_hw: tuple[int, int]) -> None:
        super().__init__()
        if layer.resolved_algorithm("cpu") != "dft":
            raise AccelError(f"band-limited conv {layer} uses the 'fft' algorithm: ZigZag costs "
                             "only Conv/Gemm/MatMul layers and an FFT is none of these; use "
                             "band_algorithm='dft'")
        if layer.compress_rate is None:
            raise AccelError(f"band-limited conv {layer} picks its band from each batch's energy: "
                             "ZigZag needs a fixed band; use a compression ratio (--band-limit)")
        band = layer.band_for(*in_hw)
        self.rows, self.cols = band.rows, band.cols
        self.out_hw = _output_hw(layer, band)
        self.out_channels = layer.out_channels
        ci, co = layer.in_channels, layer.out_channels
        kh, kw = layer.kernel_size
        # float64 for the constants, stored as float32 (the export's dtype)
        x_cols, x_rows, w_mix, inv_rows, inv_cols = _dft_matrices(
            tuple(in_hw), layer.kernel_size, band, layer.stride, layer.padding, torch.float64, "cpu")
        with torch.no_grad():
            taps = layer.weight.detach().double().permute(2, 3, 1, 0).reshape(kh * kw, ci * co)
            rc = self.rows * self.cols
            ws = (w_mix @ taps).view(rc, 2, 2, ci, co).transpose(2, 3).reshape(rc, 2 * ci, 2 * co)
            mix = ws.transpose(1, 2).reshape(rc * 2 * co, 2 * ci, 1, 1)  # group f: W_f^T
        f32 = torch.float32
        self.register_buffer("x_cols", x_cols.to(f32))
        self.register_buffer("x_rows_t", x_rows.t().contiguous().to(f32))
        self.register_buffer("mix", mix.to(f32).contiguous())
        self.register_buffer("inv_rows_t", inv_rows.t().contiguous().to(f32))
        self.register_buffer("inv_cols", inv_cols.to(f32))
        bias = None if layer.bias is None else layer.bias.detach().to(f32).clone()
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, ci, h, _ = x.shape
        r, c, co = self.rows, self.cols, self.out_channels
        ho, wo = self.out_hw
        a = (x @ self.x_cols).view(n, ci, 2 * h, c)                 # (N, Ci, (H, re/im), c)
        xb = a.transpose(2, 3) @ self.x_rows_t                      # (N, Ci, c, (re/im, r))
        xs = xb.view(n, ci, c, 2, r).permute(0, 4, 2, 3, 1).reshape(n, r * c * 2 * ci, 1, 1)
        ys = F.conv2d(xs, self.mix, groups=r * c)                   # (N, (r, c, re/im, Co), 1, 1)
        ys = ys.view(n, r, c, 2, co).permute(0, 4, 2, 3, 1).reshape(n, co, c, 2 * r)
        z = ys @ self.inv_rows_t                                    # (N, Co, c, (Ho, re/im))
        z = z.view(n, co, c, ho, 2).permute(0, 1, 3, 4, 2).reshape(n, co, ho, 2 * c)
        y = z @ self.inv_cols                                       # (N, Co, Ho, Wo)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y


def input_sizes(model: nn.Module, example: torch.Tensor) -> dict[nn.Module, tuple[int, int]]:
    """The (H, W) of the input every band-limited conv of ``model`` sees on ``example``."""
    sizes: dict[nn.Module, tuple[int, int]] = {}
    hooks = [m.register_forward_pre_hook(lambda mod, args: sizes.__setitem__(mod, tuple(args[0].shape[-2:])))
             for m in band_layers(model)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    return sizes


def export_form(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """``model`` itself when it has no band-limited conv; else a copy in which each one is a
    ``DftConvExport`` at the input size it sees on ``example`` (a one-line AccelError for a
    layer ZigZag cannot cost)."""
    if not band_layers(model):
        return model
    model = copy.deepcopy(model)
    sizes = input_sizes(model, example)
    swaps = [(parent, name, child) for parent in model.modules()
             for name, child in parent.named_children() if isinstance(child, BandLimitedConv2d)]
    for parent, name, child in swaps:
        if child not in sizes:
            raise AccelError(f"band-limited conv {name} is not used by the forward; cannot export it")
        setattr(parent, name, DftConvExport(child, sizes[child]))
    return model
