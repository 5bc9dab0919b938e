"""Band-limited 2-D convolution (Dziedzic et al., "Band-limited Training and Inference for
Convolutional Neural Networks", ICML 2019), for any H x W input, stride, padding and bias.

The convolution runs in the Fourier domain on a low-frequency band only. With the padded
input of size ``Lh x Lw`` (``H + 2*pad``), the layer takes the half spectrum (``rfft2``,
``Lh x (Lw//2 + 1)`` coefficients) of the input and of the zero-padded filter, keeps the band

    rows 0..t-1 and the last b rows (t = ceil(r/2), b = r - t), columns 0..c-1

(the paper's block: rows ``0..k-1`` and the last ``k-1`` rows, columns ``0..k-1``; here each
axis has its own ``r`` and ``c`` so non-square inputs such as 22 x 52 work), multiplies by the
conjugated filter spectrum and sums over input channels (a cross-correlation, as
``F.conv2d``), zero-fills the rest, inverts, crops to the valid output and adds the bias.
Stride subsamples the stride-1 output. The transform size equals the padded input, which is
enough for the valid cross-correlation never to wrap around.

Two ways to choose the band:

* ``compress_rate`` = cr: cr% of the half-spectrum coefficients are discarded. ``r`` (odd, or
  all ``Lh`` rows) and ``c`` are picked so that ``r*c / (Lh * (Lw//2+1))`` is as close to
  ``1 - cr/100`` as integers allow, each axis keeping about ``sqrt(1 - cr/100)`` of itself
  (within 3 points for the inputs here and for each network as a whole; a small inner
  spectrum such as 8 x 10 coefficients can miss by a few points more, as the row count is
  odd). cr = 0 keeps everything: the layer equals ``F.conv2d`` up to rounding.
* ``preserve_energy`` = p: per forward, the band with the fewest coefficients that keeps at
  least p% of the input batch's spectral energy (Parseval-weighted half spectrum).

``kept_fraction`` says what share of the half-spectrum coefficients the last forward kept.

Two algorithms compute the same band-limited convolution:

* ``"fft"``: ``torch.fft.rfft2`` / ``irfft2`` and a complex einsum over the kept band (the
  paper's method; half precision is computed in fp32, as cuFFT takes fp16 only for
  power-of-two sizes);
* ``"dft"``: a truncated DFT: the forward transform to the kept band and the inverse
  transform to the strided output pixels are small dense real matrix products per axis, and
  the channel sum is one batched matmul over the kept frequencies; everything stays in the
  activation dtype (tensor cores), and its cost falls with the band.

``"auto"`` picks ``DEFAULT_ALGORITHM`` by the input's device. Autograd differentiates
either, so the backward applies the same band to the gradients.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

ALGORITHMS = ("fft", "dft")
# "auto" per device type: the truncated DFT. On CUDA it runs on tensor cores in fp16/bf16
# while the FFT path works in fp32 complex arithmetic, so it is expected to be faster there;
# not yet measured on a GPU (README, "Band-limited CNNs": util/bandlimit_bench.py times both).
DEFAULT_ALGORITHM = {"cuda": "dft", "cpu": "dft"}
# how far (as a share of the half spectrum) a fixed band may miss 1 - cr/100 to keep its
# two axes balanced
BAND_SLACK = 0.025


class BandLimitError(ValueError):
    """A bad band-limit setting; the message is one line meant for the user."""


def check_band_settings(compress_rate: float | None, preserve_energy: float | None,
                        algorithm: str) -> None:
    """One-line errors for settings no band-limited layer can take."""
    if (compress_rate is None) == (preserve_energy is None):
        raise BandLimitError("give exactly one of compress_rate (percent of the spectrum "
                             "discarded) and preserve_energy (percent of energy kept)")
    for name, value in (("band limit", compress_rate), ("preserve_energy", preserve_energy)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise BandLimitError(f"bad {name} {value!r}: give a number (a percentage)")
    if compress_rate is not None and not 0 <= compress_rate < 100:
        raise BandLimitError(f"bad band limit {compress_rate!r}: the percentage of discarded "
                             "coefficients must be in [0, 100), e.g. 50")
    if preserve_energy is not None and not 0 < preserve_energy <= 100:
        raise BandLimitError(f"bad preserve_energy {preserve_energy!r}: the percentage of "
                             "spectral energy kept must be in (0, 100], e.g. 90")
    if algorithm not in ALGORITHMS + ("auto",):
        raise BandLimitError(f"unknown band-limit algorithm {algorithm!r}; valid: "
                             f"{', '.join(ALGORITHMS + ('auto',))}")


# ---------------------------------------------------------------- the band

@dataclass(frozen=True)
class Band:
    """The kept block of an ``Lh x (Lw//2+1)`` half spectrum: ``rows`` rows (the first ``top``
    and the last ``rows - top``) by the first ``cols`` columns."""
    size: tuple[int, int]
    rows: int
    cols: int

    @property
    def top(self) -> int:
        return (self.rows + 1) // 2

    @property
    def bottom(self) -> int:
        return self.rows - self.top

    @property
    def half_cols(self) -> int:
        return self.size[1] // 2 + 1

    @property
    def kept(self) -> int:
        return self.rows * self.cols

    @property
    def total(self) -> int:
        return self.size[0] * self.half_cols

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.total

    @property
    def full(self) -> bool:
        return self.rows == self.size[0] and self.cols == self.half_cols

    def row_frequencies(self) -> list[int]:
        """Row indices of the kept band in the half spectrum, in the order the band stores them."""
        lh = self.size[0]
        return list(range(self.top)) + list(range(lh - self.bottom, lh))

    def mask(self) -> torch.Tensor:
        """Boolean ``Lh x (Lw//2+1)`` mask of the kept coefficients."""
        m = torch.zeros(self.size[0], self.half_cols, dtype=torch.bool)
        m[self.row_frequencies(), :self.cols] = True
        return m


def row_counts(lh: int) -> list[int]:
    """Allowed numbers of kept rows: odd counts (row 0 and symmetric pairs +-1, +-2, ...)
    and all ``lh`` rows."""
    return sorted(set(range(1, lh + 1, 2)) | {lh})


@lru_cache(maxsize=None)
def fixed_band(lh: int, lw: int, compress_rate: float) -> Band:
    """The band that discards about ``compress_rate``% of the half spectrum.

    Among all (rows, cols) whose kept share is within ``BAND_SLACK`` of ``1 - cr/100`` (or the
    closest ones when none is), the band whose two axes keep the most similar shares (each
    about the square root of the target) wins; then the closer share. cr = 0 keeps all.
    """
    half = lw // 2 + 1
    if compress_rate == 0:
        return Band((lh, lw), lh, half)
    target = 1.0 - compress_rate / 100.0
    cands = [(abs(r * c / (lh * half) - target), abs(r / lh - c / half), r, c)
             for r in row_counts(lh) for c in range(1, half + 1)]
    limit = max(min(x[0] for x in cands), BAND_SLACK)
    _, _, r, c = min((x for x in cands if x[0] <= limit), key=lambda x: (x[1], x[0]))
    return Band((lh, lw), r, c)


def column_weights(lw: int, device: torch.device | None = None) -> torch.Tensor:
    """Parseval weights of the half-spectrum columns: columns that stand for a mirrored
    column of the full spectrum count twice (all but column 0 and, for even ``lw``, Nyquist)."""
    w = torch.full((lw // 2 + 1,), 2.0, device=device)
    w[0] = 1.0
    if lw % 2 == 0:
        w[-1] = 1.0
    return w


def energy_band(energy: torch.Tensor, lw: int, preserve_energy: float) -> Band:
    """The band with the fewest coefficients whose share of ``energy`` (an ``Lh x (Lw//2+1)``
    map of Parseval-weighted squared magnitudes) is at least ``preserve_energy``%."""
    lh, half = energy.shape
    order = [0]
    for k in range(1, lh):
        if len(order) == lh:
            break
        order.append(k)
        if lh - k != k and len(order) < lh:
            order.append(lh - k)
    cum = energy.double()[order].cumsum(0).cumsum(1).cpu()  # one host sync per forward
    need = cum[-1, -1].item() * preserve_energy / 100.0 * (1 - 1e-9)
    best = None
    for r in row_counts(lh):
        ok = torch.nonzero(cum[r - 1] >= need)
        if len(ok):
            c = int(ok[0]) + 1
            key = (r * c, -float(cum[r - 1, c - 1]))
            if best is None or key < best[0]:
                best = (key, r, c)
    assert best is not None  # the full band always keeps all of the energy
    return Band((lh, lw), best[1], best[2])


def spectral_energy(x: torch.Tensor, lh: int, lw: int) -> torch.Tensor:
    """Parseval-weighted energy map of a batch's half spectra at transform size ``lh x lw``
    (summed over images and channels). Padding shifts the signal, so it does not change it."""
    with torch.no_grad():
        spec = torch.fft.rfft2(x.detach().float(), s=(lh, lw))
        return spec.abs().square().sum((0, 1)) * column_weights(lw, x.device)


# ---------------------------------------------------------------- the two algorithms

def _cut(z: torch.Tensor, band: Band) -> torch.Tensor:
    """The kept band of half spectra ``z`` (..., Lh, Lw//2+1) -> (..., rows, cols)."""
    top = z[..., :band.top, :band.cols]
    if band.bottom == 0:
        return top
    return torch.cat([top, z[..., band.size[0] - band.bottom:, :band.cols]], dim=-2)


def fft_conv(x: torch.Tensor, weight: torch.Tensor, band: Band, stride: tuple[int, int],
             padding: tuple[int, int]) -> torch.Tensor:
    """Band-limited cross-correlation with rfft2 / irfft2 (no bias)."""
    lh, lw = band.size
    kh, kw = weight.shape[-2:]
    dtype = x.dtype
    work = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    xf = torch.fft.rfft2(F.pad(x.to(work), (padding[1], 0, padding[0], 0)), s=(lh, lw))
    wf = torch.fft.rfft2(weight.to(work), s=(lh, lw))
    if band.full:
        spec = torch.einsum("ncuv,ocuv->nouv", xf, wf.conj())
    else:
        yb = torch.einsum("ncuv,ocuv->nouv", _cut(xf, band), _cut(wf, band).conj())
        spec = yb.new_zeros(*yb.shape[:2], lh, band.half_cols)
        spec[..., :band.top, :band.cols] = yb[..., :band.top, :]
        if band.bottom:
            spec[..., lh - band.bottom:, :band.cols] = yb[..., band.top:, :]
    y = torch.fft.irfft2(spec, s=(lh, lw))
    return y[..., :lh - kh + 1:stride[0], :lw - kw + 1:stride[1]].to(dtype)


def _dft_matrices(in_hw: tuple[int, int], kernel: tuple[int, int], band: Band,
                  stride: tuple[int, int], padding: tuple[int, int], dtype: torch.dtype,
                  device: str) -> tuple[torch.Tensor, ...]:
    """The cached matrices of ``_build_dft_matrices``, made as normal tensors even inside
    ``inference_mode`` (a cached inference tensor could never be saved for a later backward)."""
    with torch.inference_mode(False):
        return _build_dft_matrices(in_hw, kernel, band, stride, padding, dtype, device)


@lru_cache(maxsize=256)
def _build_dft_matrices(in_hw: tuple[int, int], kernel: tuple[int, int], band: Band,
                  stride: tuple[int, int], padding: tuple[int, int], dtype: torch.dtype,
                  device: str) -> tuple[torch.Tensor, ...]:
    """Real DFT matrices of one layer shape, built in float64 and cast once.

    With ``phi = 2 pi u h / Lh`` (kept rows u) and ``theta = 2 pi v w / Lw`` (kept columns v):

    * ``x_cols`` (W x 2c) = ``[cos theta | -sin theta]`` at the padded input columns: ``x @ x_cols``
      is the column transform A, laid out (H, re/im, c);
    * ``x_rows`` (2r x 2H) maps that layout to the band ``[X_re ; X_im]`` (Re = cos A_re + sin A_im,
      Im = cos A_im - sin A_re, the signs of ``e^{-i(...)}``); both carry 1/sqrt(L) (orthonormal)
      scaling, so fp16 sums stay small;
    * ``w_mix`` (r*c*4 x kh*kw): the filter's band spectrum ``W = sum w e^{-i(phi + theta)}``
      arranged as the blocks ``[[W_re, -W_im], [W_im, W_re]]`` of the channel-mixing matmul;
    * ``inv_rows`` (2Ho x 2r): kept rows -> strided output rows, ``Z = sum Y e^{+i phi}``, output
      laid out (Ho, re/im);
    * ``inv_cols`` (2c x Wo): ``y = sum_v a_v (Z_re cos theta - Z_im sin theta)`` at the strided
      output columns, ``a_v`` = 1 for column 0 and Nyquist, else 2 (the mirrored half).
    """
    (h, w), (kh, kw), (lh, lw) = in_hw, kernel, band.size
    ho, wo = (lh - kh) // stride[0] + 1, (lw - kw) // stride[1] + 1
    f64 = torch.float64
    u = torch.tensor(band.row_frequencies(), dtype=f64)
    v = torch.arange(band.cols, dtype=f64)
    r, c = len(u), len(v)
    theta = 2 * math.pi * torch.outer(torch.arange(w, dtype=f64) + padding[1], v) / lw
    x_cols = torch.cat([theta.cos(), -theta.sin()], 1) / math.sqrt(lw)
    phi = 2 * math.pi * torch.outer(u, torch.arange(h, dtype=f64) + padding[0]) / lh
    cos, sin = phi.cos(), phi.sin()
    x_rows = torch.cat([torch.stack([cos, sin], -1).reshape(r, 2 * h),      # X_re
                        torch.stack([-sin, cos], -1).reshape(r, 2 * h)], 0)  # X_im
    x_rows = x_rows / math.sqrt(lh)
    # filter taps (a, b): angle phi_u a + theta_v b for every kept (u, v)
    ang = 2 * math.pi * (u.view(r, 1, 1, 1) * torch.arange(kh, dtype=f64).view(1, 1, kh, 1) / lh
                         + v.view(1, c, 1, 1) * torch.arange(kw, dtype=f64).view(1, 1, 1, kw) / lw)
    wc, ws = ang.cos().reshape(r * c, kh * kw), ang.sin().reshape(r * c, kh * kw)
    w_mix = torch.stack([torch.stack([wc, ws], 1), torch.stack([-ws, wc], 1)], 1)  # (rc, p, q, t)
    w_mix = w_mix.reshape(r * c * 4, kh * kw)
    phi_out = 2 * math.pi * torch.outer(torch.arange(ho, dtype=f64) * stride[0], u) / lh
    cos, sin = phi_out.cos(), phi_out.sin()
    inv_rows = torch.stack([torch.cat([cos, -sin], 1), torch.cat([sin, cos], 1)], 1)
    inv_rows = inv_rows.reshape(2 * ho, 2 * r) / math.sqrt(lh)
    theta_out = 2 * math.pi * torch.outer(v, torch.arange(wo, dtype=f64) * stride[1]) / lw
    a = torch.full((c, 1), 2.0, dtype=f64)
    a[0] = 1.0
    if lw % 2 == 0 and c == lw // 2 + 1:
        a[-1] = 1.0
    inv_cols = torch.cat([a * theta_out.cos(), -a * theta_out.sin()], 0) / math.sqrt(lw)
    return tuple(t.to(device=device, dtype=dtype).contiguous()
                 for t in (x_cols, x_rows, w_mix, inv_rows, inv_cols))


def dft_conv(x: torch.Tensor, weight: torch.Tensor, band: Band, stride: tuple[int, int],
             padding: tuple[int, int]) -> torch.Tensor:
    """Band-limited cross-correlation as a truncated DFT of dense matrix products (no bias)."""
    n, ci, h, w = x.shape
    co, _, kh, kw = weight.shape
    r, c = band.rows, band.cols
    x_cols, x_rows, w_mix, inv_rows, inv_cols = _dft_matrices(
        (h, w), (kh, kw), band, stride, padding, x.dtype, str(x.device))
    a = (x @ x_cols).view(n, ci, 2 * h, c)                            # (N, Ci, (H, re/im), c)
    xb = (x_rows @ a).view(n, ci, 2, r, c)                            # (N, Ci, re/im, r, c)
    xs = xb.permute(3, 4, 0, 2, 1).reshape(r * c, n, 2 * ci)          # per frequency: [X_re X_im]
    taps = weight.to(x.dtype).permute(2, 3, 1, 0).reshape(kh * kw, ci * co)
    ws = (w_mix @ taps).view(r * c, 2, 2, ci, co).transpose(2, 3).reshape(r * c, 2 * ci, 2 * co)
    # Y = sum over Ci of X * conj(W): [X_re X_im] @ [[W_re, -W_im], [W_im, W_re]] = [Y_re Y_im]
    ys = torch.bmm(xs, ws).view(r, c, n, 2, co).permute(2, 4, 3, 0, 1).reshape(n, co, 2 * r, c)
    z = (inv_rows @ ys).view(n, co, -1, 2 * c)                        # (N, Co, Ho, (re/im, c))
    return z @ inv_cols                                               # (N, Co, Ho, Wo)


_ALGORITHM_FNS = {"fft": fft_conv, "dft": dft_conv}


# ---------------------------------------------------------------- the layer

def _pair(value: int | tuple[int, int], what: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 0 for v in pair):
        raise BandLimitError(f"bad {what} {value!r}: give an int or a pair of ints >= 0")
    return pair  # type: ignore[return-value]


class BandLimitedConv2d(nn.Module):
    """A 2-D convolution computed on a low-frequency band (module docstring).

    Its parameters are ``nn.Conv2d``'s (``weight`` Co x Ci x kh x kw, optional ``bias``), so
    state dicts load both ways; ``from_conv`` wraps an existing conv's parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 bias: bool = True, *, compress_rate: float | None = None,
                 preserve_energy: float | None = None, algorithm: str = "auto") -> None:
        super().__init__()
        check_band_settings(compress_rate, preserve_energy, algorithm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1:
            raise BandLimitError("kernel_size and stride must be >= 1")
        self.compress_rate, self.preserve_energy = compress_rate, preserve_energy
        self.algorithm = algorithm
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.last_band: Band | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s default initialisation."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.weight[0].numel())
            nn.init.uniform_(self.bias, -bound, bound)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, *, compress_rate: float | None = None,
                  preserve_energy: float | None = None, algorithm: str = "auto") -> "BandLimitedConv2d":
        """A band-limited layer that shares ``conv``'s weight and bias tensors."""
        if not convertible(conv):
            raise BandLimitError(f"cannot band-limit {conv}: only zero-padded, ungrouped, "
                                 "undilated convs with integer padding")
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.bias is not None, compress_rate=compress_rate,
                    preserve_energy=preserve_energy, algorithm=algorithm)
        layer.weight = conv.weight
        layer.bias = conv.bias
        return layer

    def transform_size(self, h: int, w: int) -> tuple[int, int]:
        """(Lh, Lw): the padded input, enough for a valid cross-correlation without wrap-around."""
        return h + 2 * self.padding[0], w + 2 * self.padding[1]

    def band_for(self, h: int, w: int) -> Band:
        """The fixed-rate band of an ``h x w`` input (energy mode: the last forward's band when it
        had this size, else the full spectrum)."""
        lh, lw = self.transform_size(h, w)
        if self.compress_rate is not None:
            return fixed_band(lh, lw, float(self.compress_rate))
        if self.last_band is not None and self.last_band.size == (lh, lw):
            return self.last_band
        return fixed_band(lh, lw, 0.0)

    def resolved_algorithm(self, device: torch.device | str) -> str:
        if self.algorithm != "auto":
            return self.algorithm
        return DEFAULT_ALGORITHM.get(torch.device(device).type, "dft")

    @property
    def kept_fraction(self) -> float | None:
        """Share of the half-spectrum coefficients the last forward kept (None before one)."""
        return None if self.last_band is None else self.last_band.kept_fraction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise BandLimitError(f"expected an (N, {self.in_channels}, H, W) input, got "
                                 f"{tuple(x.shape)}")
        h, w = x.shape[-2:]
        lh, lw = self.transform_size(h, w)
        if lh < self.kernel_size[0] or lw < self.kernel_size[1]:
            raise BandLimitError(f"input {h} x {w} (padded {lh} x {lw}) is smaller than the "
                                 f"kernel {self.kernel_size}")
        if self.compress_rate is not None:
            band = fixed_band(lh, lw, float(self.compress_rate))
        else:
            band = energy_band(spectral_energy(x, lh, lw), lw, float(self.preserve_energy))
        if not torch.compiler.is_compiling():
            self.last_band = band
        y = _ALGORITHM_FNS[self.resolved_algorithm(x.device)](x, self.weight, band, self.stride,
                                                              self.padding)
        if self.bias is not None:
            y = y + self.bias.to(y.dtype).view(1, -1, 1, 1)
        return y

    def extra_repr(self) -> str:
        mode = (f"compress_rate={self.compress_rate:g}" if self.compress_rate is not None
                else f"preserve_energy={self.preserve_energy:g}")
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
                f"{mode}, algorithm={self.algorithm}")


# ---------------------------------------------------------------- whole networks

def convertible(conv: nn.Module) -> bool:
    """Whether ``conv`` is an ``nn.Conv2d`` this layer can stand in for, with a kernel larger
    than 1 x 1 (1 x 1 convs stay ordinary, as in the paper)."""
    return (isinstance(conv, nn.Conv2d) and max(conv.kernel_size) > 1 and conv.groups == 1
            and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str))


def band_limit_model(model: nn.Module, *, compress_rate: float | None = None,
                     preserve_energy: float | None = None, algorithm: str = "auto") -> int:
    """Replace, in place, every convertible conv of ``model`` by a ``BandLimitedConv2d`` that
    shares its parameters; returns how many were replaced."""
    check_band_settings(compress_rate, preserve_energy, algorithm)
    swaps = [(parent, name, child) for parent in model.modules()
             for name, child in parent.named_children() if convertible(child)]
    for parent, name, child in swaps:
        setattr(parent, name, BandLimitedConv2d.from_conv(
            child, compress_rate=compress_rate, preserve_energy=preserve_energy, algorithm=algorithm))
    return len(swaps)


def band_layers(model: nn.Module) -> list[BandLimitedConv2d]:
    return [m for m in model.modules() if isinstance(m, BandLimitedConv2d)]


def kept_fraction(model: nn.Module) -> float | None:
    """Share of half-spectrum coefficients kept over all band-limited layers of ``model`` in
    its last forward (each layer weighted by its spectrum size); None without such layers or
    before a forward."""
    bands = [m.last_band for m in band_layers(model)]
    if not bands or any(b is None for b in bands):
        return None
    return sum(b.kept for b in bands) / sum(b.total for b in bands)
