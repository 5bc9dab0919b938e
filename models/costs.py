"""Per-layer FLOPs and bytes for the paper's arithmetic-intensity model (section 2).

For a conv layer with batch ``N``, output ``Ho x Wo``, channels ``Ci -> Co``, kernel
``KH x KW`` and ``B`` bytes per element::

    FLOPs = 2 * N*Ho*Wo * Co*(Ci/groups)*KH*KW
    bytes = B * (input elements + weight elements + output elements)

A linear layer is the 1x1 case. Activations, pooling and BatchNorm are taken as fused into
the preceding layer and count nothing. Bias adds are not counted in FLOPs (as in the paper's
formula and its worked example); ``bias_flops`` keeps them (one per output element), which the
released ``ai.py`` added (``arithmetic_intensity(..., count_bias=True)``).

A band-limited conv (``models/bandlimit.py``) counts the FLOPs and bytes its algorithm
really executes (``bandlimited_cost``), and keeps the direct convolution's FLOPs beside them
in ``direct_flops``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .bandlimit import BandLimitedConv2d


@dataclass(frozen=True)
class LayerCost:
    name: str
    flops: int
    in_elems: int
    weight_elems: int
    out_elems: int
    bias_flops: int = 0
    # band-limited convs: elements of the intermediate spectra read and written, their size
    # (None = the activations' ``bytes_per_elt``), and the direct conv's FLOPs for comparison
    spectral_elems: int = 0
    spectral_bytes_per_elt: int | None = None
    direct_flops: int | None = None

    def bytes(self, bytes_per_elt: int) -> int:
        spectral = self.spectral_bytes_per_elt or bytes_per_elt
        return (bytes_per_elt * (self.in_elems + self.weight_elems + self.out_elems)
                + spectral * self.spectral_elems)


def conv_cost(n: int, cin: int, hin: int, win: int, cout: int, hout: int, wout: int,
              kh: int, kw: int, groups: int = 1, name: str = "conv", bias: bool = False) -> LayerCost:
    """Cost of one conv layer (the paper's formula, real input/output element counts)."""
    out = n * cout * hout * wout
    return LayerCost(name, 2 * out * (cin // groups) * kh * kw, n * cin * hin * win,
                     cout * (cin // groups) * kh * kw, out, out if bias else 0)


def fft_flops(maps: int, lh: int, lw: int) -> int:
    """FLOPs of ``maps`` real 2-D FFTs of ``lh x lw`` points: 2.5 M log2 M each (half the
    classic 5 M log2 M of a complex FFT; the usual count for real input)."""
    m = lh * lw
    return int(round(maps * 2.5 * m * math.log2(m))) if m > 1 else 0


def bandlimited_cost(layer: BandLimitedConv2d, n: int, hin: int, win: int, hout: int, wout: int,
                     name: str = "conv", device_type: str = "cuda") -> LayerCost:
    """What one band-limited conv executes for a batch of ``n`` (``layer``'s band at this input
    size and its algorithm as resolved on ``device_type``), stage by stage.

    fft: rfft2 of the padded input (N*Ci maps) and of the filter (Co*Ci maps), the band cut
    out of both, 8 FLOPs per complex multiply-add over the kept band (N*Co*Ci*r*c), the
    zero-filled half spectrum and irfft2 (N*Co maps); spectra are fp32 complex (2 x 4 bytes)
    even for fp16 activations. dft: the real matrix products of ``models.bandlimit.dft_conv``
    (input columns, input rows, the filter's spectrum, the channel mix as one batched matmul,
    output rows, output columns) and the permutes between them, in the activation dtype.
    """
    band = layer.band_for(hin, win)
    (lh, lw), r, c, half = band.size, band.rows, band.cols, band.half_cols
    cin, cout = layer.in_channels, layer.out_channels
    kh, kw = layer.kernel_size
    direct = 2 * n * hout * wout * cout * cin * kh * kw
    inputs, weights, outputs = n * cin * hin * win, cout * cin * kh * kw, n * cout * hout * wout
    bias_flops = outputs if layer.bias is not None else 0
    rc = r * c
    if layer.resolved_algorithm(device_type) == "fft":
        flops = fft_flops(n * cin, lh, lw) + fft_flops(cout * cin, lh, lw) \
            + fft_flops(n * cout, lh, lw) + 8 * n * cout * cin * rc
        full = 2 * lh * half
        spectral = (n * cin * lh * lw                           # padded fp32 input
                    + (n * cin + cout * cin) * (full + 2 * 2 * rc)  # spectra written, band cut
                    + (n * cin + cout * cin + n * cout) * 2 * rc     # mix reads and writes
                    + n * cout * (full + full)                       # zero-filled, read by irfft2
                    + n * cout * lh * lw)                            # irfft2 output
        return LayerCost(name, flops, inputs, weights, outputs, bias_flops, spectral_elems=spectral,
                         spectral_bytes_per_elt=8, direct_flops=direct)
    flops = (2 * n * cin * hin * win * 2 * c            # x @ x_cols
             + 2 * n * cin * 2 * r * 2 * hin * c         # x_rows @ .
             + 2 * rc * 4 * kh * kw * cin * cout        # filter spectrum
             + 2 * rc * n * 2 * cin * 2 * cout          # channel mix
             + 2 * n * cout * 2 * hout * 2 * r * c      # inv_rows @ .
             + 2 * n * cout * hout * 2 * c * wout)      # . @ inv_cols
    spectral = (n * cin * hin * 2 * c * 2               # column transform written, read
                + n * cin * 2 * rc * 3                  # band written, permuted (read + write)
                + rc * 4 * cin * cout * 3               # filter blocks written, transposed
                + rc * 4 * cin * cout                   # ... read by the mix
                + n * cout * 2 * rc * 3                 # mix output written, permuted
                + n * cout * 2 * hout * c * 2)          # row inverse written, read
    return LayerCost(name, flops, inputs, weights, outputs, bias_flops, spectral_elems=spectral,
                     direct_flops=direct)


def linear_cost(n: int, fin: int, fout: int, name: str = "linear", bias: bool = False) -> LayerCost:
    return LayerCost(name, 2 * n * fin * fout, n * fin, fin * fout, n * fout, n * fout if bias else 0)


def layer_costs(model: nn.Module, input_shape: tuple[int, ...], batch: int) -> list[LayerCost]:
    """Costs of every Conv2d, band-limited conv and Linear of ``model`` for a batch of
    ``batch`` inputs.

    Shapes come from one dry run with batch 1 on the model's device (costs scale linearly in
    N); a model built under ``torch.device("meta")`` gives them without computing anything.
    """
    costs: list[LayerCost] = []

    def hook(mod: nn.Module, args: tuple, out: torch.Tensor, name: str) -> None:
        x = args[0]
        if isinstance(mod, BandLimitedConv2d):
            costs.append(bandlimited_cost(mod, batch, x.shape[2], x.shape[3], out.shape[2],
                                          out.shape[3], name))
        elif isinstance(mod, nn.Conv2d):
            costs.append(conv_cost(batch, x.shape[1], x.shape[2], x.shape[3], out.shape[1],
                                   out.shape[2], out.shape[3], *mod.kernel_size, mod.groups, name,
                                   mod.bias is not None))
        else:
            costs.append(linear_cost(batch, mod.in_features, mod.out_features, name,
                                     mod.bias is not None))

    handles = [m.register_forward_hook(lambda mod, a, o, n=name: hook(mod, a, o, n))
               for name, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear, BandLimitedConv2d))]
    try:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device  # a model built on "meta" costs no memory
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device))
        model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    return costs


def arithmetic_intensity(costs: list[LayerCost], bytes_per_elt: int = 2,
                         count_bias: bool = False) -> float:
    """Whole-CNN AI: sum of FLOPs over sum of bytes of its conv and linear layers
    (``count_bias``: bias adds count as FLOPs too, as the released ``ai.py`` did)."""
    flops = sum(c.flops + (c.bias_flops if count_bias else 0) for c in costs)
    return flops / sum(c.bytes(bytes_per_elt) for c in costs)


def roofline_seconds(costs: list[LayerCost], peak_flops: float, bytes_per_sec: float,
                     bytes_per_elt: int = 2) -> float:
    """Time of a layer-by-layer run at the roofline: each layer takes
    ``max(FLOPs / peak_flops, bytes / bytes_per_sec)`` and the layers add up.

    Why: with the GPU's measured peak and bandwidth this is what ideal kernels (activation and
    pooling fused, every tensor read or written once per layer) would take, so the ratio of
    two models' roofline times is the speedup folding can give once the kernels stop being
    the limit. It is not a hard ceiling on a measured speedup: a slow original kernel makes
    the measured ratio larger.
    """
    if peak_flops <= 0 or bytes_per_sec <= 0:
        raise ValueError("roofline_seconds needs a positive peak FLOPs/sec and bytes/sec")
    return sum(max(c.flops / peak_flops, c.bytes(bytes_per_elt) / bytes_per_sec) for c in costs)
