"""Rendering of synthetic game-HUD crops: fonts, backgrounds, text, and stream artefacts.

The paper trained its game-scraping CNNs on text rendered "with random fonts, locations and
backgrounds". ``make_image(task, cls, rng)`` draws one crop of class ``cls``:

1. a game-like background at 3x the task's size (gradient, texture, clutter, HUD panel,
   a clipped label word such as "SQUADS" next to the value);
2. the HUD text of ``game_text`` in a random TrueType font (matplotlib's and the system's),
   size, colour, letter spacing, stretch, slant, outline and shadow, placed as a cropper
   would (left/centre/right, sometimes cut at an edge that does not hide the label);
3. a downscale to the task's H x W (so small text is anti-aliased like real HUD text),
   then blur, resolution loss, colour jitter, sensor noise and JPEG compression.

"other" crops show no valid value: an empty HUD, unrelated or invalid text, a transition
frame (black, solid, faded) or a value smeared/pixelated beyond reading.
Everything random comes from the ``numpy.random.Generator`` passed in (deterministic).
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import cv2
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from config.tasks import get_task
from util.synth.game_text import OTHER, random_word, sample_text, text_spec

UPSCALE = 3  # render at 3x the task size, then downscale
FONT_DIRS = (Path(matplotlib.get_data_path()) / "fonts" / "ttf", Path("/usr/share/fonts"),
             Path("/usr/local/share/fonts"), Path.home() / ".fonts",
             Path.home() / ".local/share/fonts")
NEEDED_CHARS = "0123456789.,:kKm-+SQUADLEFT"
_REFERENCE_FONT = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"

# Text colours seen on game HUDs (RGB): gold, white, pale blue, green, orange, red, grey.
HUD_COLOURS = np.array([(240, 200, 90), (255, 225, 120), (250, 250, 250), (225, 230, 235),
                        (150, 210, 255), (140, 235, 140), (255, 160, 60), (255, 90, 80),
                        (190, 190, 190), (255, 255, 200)], dtype=np.float32)


# --- fonts ---------------------------------------------------------------------------------
def _ink(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray | None:
    im = Image.new("L", (90, 90))
    ImageDraw.Draw(im).text((10, 10), ch, font=font, fill=255)
    a = np.asarray(im)
    ys, xs = np.nonzero(a)
    if len(ys) == 0:
        return None
    return a[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)


def _glyph_signature(font: ImageFont.FreeTypeFont, ch: str) -> np.ndarray | None:
    a = _ink(font, ch)
    if a is None:
        return None
    v = cv2.resize(a, (8, 12), interpolation=cv2.INTER_AREA).ravel()
    v -= v.mean()
    return v / (np.linalg.norm(v) + 1e-6)


def font_is_usable(path: Path, reference: Path = _REFERENCE_FONT) -> bool:
    """True if the font draws every needed character and its digits look like digits
    (nearest-glyph match against DejaVu Sans), which rules out symbol and math fonts."""
    try:
        font = ImageFont.truetype(str(path), 40)
        ref = ImageFont.truetype(str(reference), 40)
    except OSError:
        return False
    missing = _glyph_signature(font, "\uffff")
    for ch in NEEDED_CHARS:
        sig = _glyph_signature(font, ch)
        if sig is None or (missing is not None and np.allclose(sig, missing)):
            return False
    digits = "0123456789"
    sigs = [_glyph_signature(font, d) for d in digits]
    refs = np.stack([_glyph_signature(ref, d) for d in digits])
    matches = (np.stack(sigs) @ refs.T).argmax(axis=1) == np.arange(10)
    if int(matches.sum()) < 6:
        return False
    for ch in ".,:-":  # punctuation of the right size (math fonts map "." to a triangle)
        rel = _ink(font, ch).shape[0] / _ink(font, "0").shape[0]
        ref_rel = _ink(ref, ch).shape[0] / _ink(ref, "0").shape[0]
        if not ref_rel / 3 <= rel <= 3 * ref_rel:
            return False
    return True


@lru_cache(maxsize=1)
def find_fonts() -> tuple[str, ...]:
    """Usable TrueType/OpenType fonts: matplotlib's plus the system's, one per file name,
    sorted by file name so every machine with the same fonts draws the same images."""
    by_name: dict[str, Path] = {}
    for d in FONT_DIRS:
        if d.is_dir():
            for p in sorted(d.rglob("*")):
                if p.suffix.lower() in (".ttf", ".otf") and p.name not in by_name:
                    by_name[p.name] = p
    fonts = tuple(str(by_name[n]) for n in sorted(by_name) if font_is_usable(by_name[n]))
    if not fonts:
        raise RuntimeError("no usable TrueType font found; install matplotlib (it ships DejaVu)")
    return fonts


@lru_cache(maxsize=8192)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=256)
def _digit_height_ratio(path: str) -> float:
    """Height of a digit in pixels per point of font size (to size text by glyph height)."""
    box = _font(path, 100).getbbox("0123456789")
    return max(box[3] - box[1], 1) / 100.0


# --- backgrounds ---------------------------------------------------------------------------
def _random_colour(rng: np.random.Generator, lum: float) -> np.ndarray:
    """A colour of mean ``lum``, mostly muted (game scenes and panels are rarely neon)."""
    c = rng.uniform(0.0, 1.0, 3) ** rng.uniform(0.5, 2.0)
    c = c / max(c.mean(), 1e-3) * lum
    c = lum + (c - lum) * rng.uniform(0.0, 0.8) ** 1.5
    return np.clip(c, 0, 255).astype(np.float32)


def background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A game-like background (float32 RGB, 0-255): dark HUD panel, mid-tone or bright scene,
    as a gradient with low-frequency texture, grain and clutter."""
    lum = float(rng.choice([rng.uniform(5, 70), rng.uniform(60, 150), rng.uniform(140, 240)],
                           p=[0.55, 0.25, 0.20]))
    c0, c1 = _random_colour(rng, lum), _random_colour(rng, lum * rng.uniform(0.5, 1.5))
    ang = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = (xx / w - 0.5) * math.cos(ang) + (yy / h - 0.5) * math.sin(ang) + 0.5
    img = c0 + np.clip(t, 0, 1)[..., None] * (c1 - c0)
    if rng.random() < 0.6:  # low-frequency texture (terrain, water, map)
        gh, gw = int(rng.integers(2, 9)), int(rng.integers(2, 13))
        tex = rng.normal(0, 1, (gh, gw, 3 if rng.random() < 0.5 else 1)).astype(np.float32)
        tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, -1)
        img = img + tex * rng.uniform(5, 30)
    if rng.random() < 0.35:  # fine grain
        img = img + rng.normal(0, rng.uniform(2, 12), (h, w, 1)).astype(np.float32)
    for _ in range(int(rng.choice([0, 1, 2, 3, 4], p=[0.35, 0.25, 0.2, 0.12, 0.08]))):
        _clutter(img, rng)
    if rng.random() < 0.3:  # translucent HUD panel with a border
        x0, x1 = sorted(rng.integers(0, w, 2))
        y0, y1 = sorted(rng.integers(0, h, 2))
        a = rng.uniform(0.3, 0.8)
        img[y0:y1 + 1, x0:x1 + 1] *= (1 - a)
        cv2.rectangle(img, (int(x0), int(y0)), (int(x1), int(y1)),
                      _random_colour(rng, rng.uniform(40, 220)).tolist(), int(rng.integers(1, 3)))
    return img


def _clutter(img: np.ndarray, rng: np.random.Generator) -> None:
    """One piece of HUD clutter: a line, frame, icon disc or bar, drawn in place."""
    h, w = img.shape[:2]
    col = _random_colour(rng, rng.uniform(20, 240)).tolist()
    th = int(rng.integers(1, 4))
    kind = rng.random()
    p = lambda: (int(rng.integers(-w // 4, w + w // 4)), int(rng.integers(-h // 4, h + h // 4)))  # noqa: E731
    if kind < 0.35:
        cv2.line(img, p(), p(), col, th, cv2.LINE_AA)
    elif kind < 0.6:
        cv2.rectangle(img, p(), p(), col, th if rng.random() < 0.6 else -1)
    elif kind < 0.85:
        cv2.circle(img, p(), int(rng.integers(2, max(3, h // 2))), col,
                   th if rng.random() < 0.5 else -1, cv2.LINE_AA)
    else:
        cv2.ellipse(img, p(), (int(rng.integers(2, w // 2)), int(rng.integers(2, h // 2))),
                    float(rng.uniform(0, 180)), 0, float(rng.uniform(60, 360)), col, th, cv2.LINE_AA)


# --- text ----------------------------------------------------------------------------------
def text_masks(text: str, font: ImageFont.FreeTypeFont, spacing: int, stroke: int
               ) -> np.ndarray:
    """(2, h, w) float32 masks in [0, 1], cropped to the ink: [fill, fill + outline]."""
    asc, desc = font.getmetrics()
    pad = stroke + 4
    advances = [font.getlength(ch) for ch in text]
    width = int(sum(advances) + spacing * max(len(text) - 1, 0) + font.size + 2 * pad)
    height = asc + desc + 2 * pad
    out = []
    for sw in ((0, stroke) if stroke else (0,)):
        im = Image.new("L", (max(width, 1), height))
        draw = ImageDraw.Draw(im)
        if spacing == 0:
            draw.text((pad, pad), text, font=font, fill=255, stroke_width=sw, stroke_fill=255)
        else:
            x = float(pad)
            for ch, adv in zip(text, advances):
                draw.text((x, pad), ch, font=font, fill=255, stroke_width=sw, stroke_fill=255)
                x += adv + spacing
        out.append(np.asarray(im, dtype=np.float32) / 255.0)
    if len(out) == 1:
        out.append(out[0])
    m = np.stack(out)
    ys, xs = np.nonzero(m[1] > 0.02)
    if len(ys) == 0:
        return m[:, :1, :1] * 0
    return m[:, ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _transform(m: np.ndarray, sx: float, shear: float) -> np.ndarray:
    """Stretch horizontally by ``sx`` and slant by ``shear`` (italic-like)."""
    _, h, w = m.shape
    nw = max(1, int(round(w * sx + abs(shear) * h)))
    mat = np.float32([[sx, -shear, shear * h if shear > 0 else 0.0], [0, 1, 0]])
    return np.stack([cv2.warpAffine(c, mat, (nw, h), flags=cv2.INTER_LINEAR) for c in m])


def _paste(img: np.ndarray, mask: np.ndarray, colour: np.ndarray, x: int, y: int) -> None:
    """Alpha-blend ``colour`` (3,) or (h, w, 3) through ``mask`` (h, w) at (x, y), clipped."""
    H, W = img.shape[:2]
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    a = mask[y0 - y:y1 - y, x0 - x:x1 - x, None]
    col = colour[y0 - y:y1 - y, x0 - x:x1 - x] if colour.ndim == 3 else colour
    region = img[y0:y1, x0:x1]
    region *= (1 - a)
    region += a * col


def draw_text(img: np.ndarray, text: str, rng: np.random.Generator, fonts: tuple[str, ...],
              clip_sides: tuple[str, ...] = (), height_frac: tuple[float, float] = (0.5, 0.92),
              max_width_frac: float = 0.97, place: str | None = None, alpha: float = 1.0) -> None:
    """Draw ``text`` onto ``img`` (float32, in place) the way a game HUD would show it."""
    H, W = img.shape[:2]
    path = fonts[int(rng.integers(len(fonts)))]
    glyph_h = H * rng.uniform(*height_frac)
    size = max(6, int(round(glyph_h / _digit_height_ratio(path))))
    font = _font(path, size)
    stroke = int(rng.integers(1, max(2, size // 9) + 1)) if rng.random() < 0.45 else 0
    spacing = int(round(size * rng.uniform(-0.08, 0.25))) if rng.random() < 0.4 else 0
    m = text_masks(text, font, spacing, stroke)
    sx = rng.uniform(0.7, 1.3) if rng.random() < 0.6 else 1.0
    shear = rng.uniform(-0.25, 0.25) if rng.random() < 0.25 else 0.0
    if sx != 1.0 or shear:
        m = _transform(m, sx, shear)
    _, h, w = m.shape
    limit = W * rng.uniform(0.75, max_width_frac)
    if w > limit:  # shrink to fit the crop, as the cropper's box is made to hold the value
        f = limit / w
        m = np.stack([cv2.resize(c, (max(1, int(w * f)), max(1, int(h * f))),
                                 interpolation=cv2.INTER_AREA) for c in m])
        _, h, w = m.shape
    dx, dy = W - w, H - h
    place = place or str(rng.choice(["left", "center", "right"], p=[0.3, 0.45, 0.25]))
    margin = rng.uniform(0, 0.3) * max(dx, 0)
    x = {"left": margin, "center": dx / 2 + rng.uniform(-0.25, 0.25) * max(dx, 0),
         "right": dx - margin}[place]
    y = dy / 2 + rng.uniform(-0.4, 0.4) * max(dy, 0)
    if clip_sides and rng.random() < 0.15:  # the cropper cut into the text a little
        side = clip_sides[int(rng.integers(len(clip_sides)))]
        if side in ("top", "bottom"):
            cut = rng.uniform(0.05, 0.22) * h
            y = -cut if side == "top" else H - h + cut
        else:
            cut = rng.uniform(0.03, 0.12) * w
            x = -cut if side == "left" else W - w + cut
    x, y = int(round(x)), int(round(y))
    fill, outline = m[0] * alpha, m[1] * alpha
    under = img[max(y, 0):max(y + h, 1), max(x, 0):max(x + w, 1)]
    bg_lum = _luma(under.reshape(-1, 3).mean(0) if under.size else img.reshape(-1, 3).mean(0))
    colour = _text_colour(rng, bg_lum, min_contrast=40.0 if stroke else 60.0)
    if rng.random() < 0.3:  # drop shadow
        off = int(rng.integers(1, max(2, size // 10) + 1))
        shadow = cv2.GaussianBlur(outline, (0, 0), rng.uniform(0.5, 2.0))
        _paste(img, shadow * rng.uniform(0.5, 0.9), np.zeros(3, np.float32), x + off, y + off)
    if stroke:
        dark = _luma(colour) > 110
        sc = rng.uniform(0, 50, 3) if dark else rng.uniform(190, 255, 3)
        _paste(img, outline, sc.astype(np.float32), x, y)
    if rng.random() < 0.25:  # vertical gradient fill (metallic HUD digits)
        c2 = np.clip(colour * rng.uniform(0.5, 0.9), 0, 255)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        grad = np.broadcast_to(colour + t * (c2 - colour), (h, w, 3))
        _paste(img, fill, grad, x, y)
    else:
        _paste(img, fill, colour, x, y)


def _luma(rgb: np.ndarray) -> float:
    """Brightness as seen in grey (ITU-R BT.601 weights)."""
    return float(rgb[0] * 0.299 + rgb[1] * 0.587 + rgb[2] * 0.114)


def _text_colour(rng: np.random.Generator, bg_lum: float, min_contrast: float) -> np.ndarray:
    """A HUD colour whose brightness differs from the background under the text by at
    least ``min_contrast`` (low-contrast but still readable text is a hard case)."""
    c = HUD_COLOURS[int(rng.integers(len(HUD_COLOURS)))] * rng.uniform(0.8, 1.05, 3)
    if bg_lum > 150 and rng.random() < 0.5:  # bright scene: dark text
        c = rng.uniform(0, 70, 3)
    elif rng.random() < 0.15:  # any colour
        c = rng.uniform(0, 255, 3)
    gap = _luma(c) - bg_lum
    if abs(gap) < min_contrast:  # push brightness away from the background
        direction = 1.0 if (gap >= 0 and bg_lum < 200) or bg_lum < 55 else -1.0
        c = c + direction * (min_contrast - abs(gap)) + direction * rng.uniform(0, 30)
    return np.clip(c, 0, 255).astype(np.float32)


# --- stream artefacts -----------------------------------------------------------------------
def degrade(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blur, resolution loss, colour jitter, noise and JPEG, as seen in a video stream.
    About 30% of crops get the hard settings (a poor stream), the rest mild ones."""
    H, W = img.shape[:2]
    hard = rng.random() < 0.3
    if hard and rng.random() < 0.4:  # stream at a lower resolution
        f = rng.uniform(0.7, 0.9)
        small = cv2.resize(img, (max(1, int(W * f)), max(1, int(H * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
    if rng.random() < (0.5 if hard else 0.15):
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, 0.75 if hard else 0.55))
    img = img * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20) + rng.uniform(-8, 8, 3)
    if rng.random() < 0.5:
        img = img + rng.normal(0, rng.uniform(1, 7 if hard else 3), img.shape)
    out = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.75:
        q = int(rng.integers(25, 70) if hard else rng.integers(50, 96))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
        out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return out


def _downscale(img: np.ndarray, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """RGB canvas -> task size, in BGR (OpenCV's order, for JPEG and PNG coding)."""
    interp = cv2.INTER_AREA if rng.random() < 0.8 else cv2.INTER_LINEAR
    return cv2.cvtColor(cv2.resize(img, (w, h), interpolation=interp), cv2.COLOR_RGB2BGR)


# --- one crop -------------------------------------------------------------------------------
def make_image(task_name: str, cls: str, h: int, w: int, rng: np.random.Generator,
               fonts: tuple[str, ...] | None = None) -> np.ndarray:
    """One (h, w, 3) uint8 crop of class ``cls`` for ``task_name``, in BGR order (what
    ``cv2.imwrite`` expects, so the PNG on disk has true colours)."""
    fonts = fonts or find_fonts()
    spec = text_spec(task_name)
    H, W = h * UPSCALE, w * UPSCALE
    img = background(rng, H, W)
    if rng.random() < 0.3:  # a label word next to the value, mostly outside the crop
        word = spec.context[int(rng.integers(len(spec.context)))] if spec.context else random_word(rng)
        draw_text(img, word, rng, fonts, height_frac=(0.25, 0.45), alpha=rng.uniform(0.5, 1.0),
                  place=str(rng.choice(["left", "right"])))
        shift = int(rng.integers(H // 2, H))
        img = np.roll(img, shift if rng.random() < 0.5 else -shift, axis=0)
    if cls != OTHER:
        draw_text(img, sample_text(task_name, cls, rng), rng, fonts, spec.clip_sides)
        return degrade(_downscale(img, h, w, rng), rng)
    kind = rng.random()
    if kind < 0.45:  # invalid value or unrelated text
        draw_text(img, sample_text(task_name, OTHER, rng), rng, fonts, spec.clip_sides)
    elif kind < 0.65:  # empty HUD
        pass
    elif kind < 0.82:  # a real value smeared or pixelated beyond reading (camera cut, motion)
        valid = [c for c in get_task(task_name).classes if c != OTHER]
        draw_text(img, sample_text(task_name, valid[int(rng.integers(len(valid)))], rng), rng, fonts)
        small = _downscale(img, h, w, rng)
        if rng.random() < 0.6:
            small = cv2.GaussianBlur(small, (0, 0), max(2.0, rng.uniform(0.18, 0.3) * h))
        else:
            b = int(rng.integers(max(2, h // 3), max(3, h // 2) + 1))
            tiny = cv2.resize(small, (max(1, w // b), max(1, h // b)), interpolation=cv2.INTER_AREA)
            small = cv2.resize(tiny, (w, h), interpolation=cv2.INTER_NEAREST)
        return degrade(small, rng)
    else:  # transition frame: black, solid colour, or the scene faded out
        t = rng.random()
        if t < 0.4:
            img = np.zeros_like(img) + rng.uniform(0, 20)
        elif t < 0.7:
            img = np.zeros_like(img) + _random_colour(rng, rng.uniform(0, 255))
        else:
            img = img * rng.uniform(0.0, 0.2)
    return degrade(_downscale(img, h, w, rng), rng)

