"""Drawing for the synthetic NoScope videos: backgrounds of fixed-camera scenes and simple
but recognisable objects (person, car, bus, fish). Used by ``util/synth/noscope_video.py``.

All drawing is in BGR (OpenCV's order) on uint8 frames; boxes are (x0, y0, x1, y1) floats.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

AA = cv2.LINE_AA
Box = tuple[float, float, float, float]


def _texture(rng: np.random.Generator, h: int, w: int, sigma: float, cell: int = 8) -> np.ndarray:
    """Low-frequency noise (H, W, 3) float32: the blotches that make a drawn scene less flat."""
    small = rng.normal(0, sigma, (max(h // cell, 2), max(w // cell, 2), 3)).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _gradient(h: int, w: int, top: tuple, bottom: tuple) -> np.ndarray:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to((1 - t) * np.float32(top) + t * np.float32(bottom), (h, w, 3)).copy()


def _finish(img: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return np.clip(img + _texture(rng, *img.shape[:2], sigma), 0, 255).astype(np.uint8)


def reef(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = _gradient(h, w, (150, 120, 40), (110, 90, 20))          # blue water, darker deep
    sand = int(h * 0.78)
    img[sand:] = _gradient(h - sand, w, (120, 170, 190), (100, 150, 170))
    for _ in range(14):                                            # coral and rocks
        c = (int(rng.integers(0, w)), int(rng.integers(int(h * 0.65), h)))
        ax = (int(rng.integers(8, 30) * h / 240), int(rng.integers(6, 22) * h / 240))
        col = [(140, 90, 230), (60, 140, 240), (170, 80, 160), (110, 110, 110)][rng.integers(4)]
        cv2.ellipse(img, c, ax, float(rng.uniform(0, 180)), 0, 360, col, -1, AA)
    return _finish(img, rng, 10)


def night_street(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = _gradient(h, w, (40, 20, 15), (25, 15, 10))
    sky = int(h * 0.4)
    x = 0
    while x < w:                                                   # buildings with lit windows
        bw, bh = int(rng.integers(30, 70)), int(rng.integers(int(h * 0.1), sky))
        cv2.rectangle(img, (x, sky - bh), (x + bw, sky), (30, 28, 28), -1)
        for wy in range(sky - bh + 6, sky - 6, 12):
            for wx in range(x + 5, x + bw - 5, 10):
                if rng.random() < 0.3:
                    cv2.rectangle(img, (wx, wy), (wx + 4, wy + 5), (90, 200, 230), -1)
        x += bw + int(rng.integers(2, 10))
    img[sky:] = _gradient(h - sky, w, (45, 45, 45), (60, 60, 60))  # road
    for x in range(0, w, 40):
        cv2.line(img, (x, int(h * 0.72)), (x + 18, int(h * 0.72)), (120, 150, 160), 2)
    for x in range(20, w, 110):                                   # street lamps and their glow
        cv2.line(img, (x, sky + 10), (x, int(h * 0.2)), (70, 70, 70), 2)
        cv2.circle(img, (x, int(h * 0.2)), 14, (60, 110, 130), -1, AA)
        cv2.circle(img, (x, int(h * 0.2)), 4, (170, 240, 255), -1, AA)
    return _finish(img, rng, 5)


def roundabout(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = np.empty((h, w, 3), np.float32)
    img[:] = (70, 140, 90)                                         # grass
    cy, cx = int(h * 0.45), w // 2
    cv2.circle(img, (cx, cy), int(h * 0.42), (105, 105, 110), int(h * 0.16), AA)   # the ring
    cv2.rectangle(img, (0, int(h * 0.62)), (w, int(h * 0.92)), (105, 105, 110), -1)  # road across
    cv2.circle(img, (cx, cy), int(h * 0.26), (60, 150, 80), -1, AA)
    for _ in range(5):
        cv2.circle(img, (cx + int(rng.integers(-30, 30)), cy + int(rng.integers(-25, 15))),
                   int(rng.integers(6, 12)), (40, 100, 50), -1, AA)
    for x in range(0, w, 36):
        cv2.line(img, (x, int(h * 0.77)), (x + 16, int(h * 0.77)), (230, 230, 230), 2)
    return _finish(img, rng, 8)


def city_street(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    img = _gradient(h, w, (235, 200, 170), (220, 210, 200))
    horizon = int(h * 0.45)
    x = 0
    while x < w:
        bw, bh = int(rng.integers(35, 80)), int(rng.integers(int(h * 0.15), horizon))
        col = tuple(int(v) for v in rng.integers(90, 200, 3))
        cv2.rectangle(img, (x, horizon - bh), (x + bw, horizon), col, -1)
        for wy in range(horizon - bh + 5, horizon - 8, 14):
            for wx in range(x + 4, x + bw - 6, 12):
                cv2.rectangle(img, (wx, wy), (wx + 6, wy + 7), (120, 100, 80), -1)
        x += bw + int(rng.integers(0, 6))
    img[horizon:int(h * 0.52)] = (170, 175, 180)                   # sidewalk
    img[int(h * 0.52):] = _gradient(h - int(h * 0.52), w, (95, 95, 100), (80, 80, 85))
    for x in range(0, w, 44):
        cv2.line(img, (x, int(h * 0.75)), (x + 20, int(h * 0.75)), (220, 230, 230), 2)
    return _finish(img, rng, 7)


def _ri(v: float) -> int:
    return int(round(v))


def draw_person(img: np.ndarray, box: Box, color: tuple, t: int, facing: int, night: bool) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    head_r = max(w * 0.22, 1.5)
    cv2.circle(img, (_ri(cx), _ri(y0 + head_r)), _ri(head_r), (120, 160, 220), -1, AA)
    cv2.rectangle(img, (_ri(x0 + w * 0.2), _ri(y0 + 2 * head_r)), (_ri(x1 - w * 0.2), _ri(y0 + h * 0.6)),
                  color, -1)
    swing = w * 0.25 * np.sin(t * 0.6)
    hip = (_ri(cx), _ri(y0 + h * 0.58))
    thick = max(_ri(w * 0.18), 1)
    for s in (1, -1):
        cv2.line(img, hip, (_ri(cx + s * swing), _ri(y1)), (60, 50, 40), thick, AA)
        cv2.line(img, (_ri(cx), _ri(y0 + h * 0.3)), (_ri(cx - s * swing), _ri(y0 + h * 0.55)), color, thick, AA)


def draw_car(img: np.ndarray, box: Box, color: tuple, t: int, facing: int, night: bool) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cv2.rectangle(img, (_ri(x0), _ri(y0 + h * 0.4)), (_ri(x1), _ri(y1 - h * 0.15)), color, -1)
    cabin = np.array([[x0 + w * 0.2, y0 + h * 0.42], [x0 + w * 0.3, y0], [x1 - w * 0.3, y0],
                      [x1 - w * 0.15, y0 + h * 0.42]], np.int32)
    cv2.fillPoly(img, [cabin], color, AA)
    cv2.rectangle(img, (_ri(x0 + w * 0.33), _ri(y0 + h * 0.08)), (_ri(x1 - w * 0.33), _ri(y0 + h * 0.38)),
                  (90, 70, 60), -1)
    r = max(_ri(h * 0.18), 1)
    for wx in (x0 + w * 0.22, x1 - w * 0.22):
        cv2.circle(img, (_ri(wx), _ri(y1 - r)), r, (20, 20, 20), -1, AA)
    front = x1 if facing > 0 else x0
    light = (200, 255, 255) if night else (120, 220, 240)
    cv2.circle(img, (_ri(front - facing * w * 0.04), _ri(y0 + h * 0.5)), max(_ri(h * 0.1), 1), light, -1, AA)
    if night:  # headlight beam
        cv2.ellipse(img, (_ri(front + facing * w * 0.3), _ri(y0 + h * 0.6)), (_ri(w * 0.3), _ri(h * 0.15)),
                    0, 0, 360, (110, 170, 190), -1, AA)
        back = x0 if facing > 0 else x1
        cv2.circle(img, (_ri(back + facing * w * 0.04), _ri(y0 + h * 0.5)), max(_ri(h * 0.08), 1),
                   (40, 40, 230), -1, AA)


def draw_bus(img: np.ndarray, box: Box, color: tuple, t: int, facing: int, night: bool) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cv2.rectangle(img, (_ri(x0), _ri(y0)), (_ri(x1), _ri(y1 - h * 0.12)), color, -1)
    cv2.rectangle(img, (_ri(x0), _ri(y0 + h * 0.55)), (_ri(x1), _ri(y0 + h * 0.62)), (240, 240, 240), -1)
    n = 6
    for i in range(n):
        wx = x0 + w * (0.04 + i * 0.92 / n)
        cv2.rectangle(img, (_ri(wx), _ri(y0 + h * 0.12)), (_ri(wx + w * 0.92 / n * 0.8), _ri(y0 + h * 0.45)),
                      (230, 200, 150) if night else (80, 60, 50), -1)
    r = max(_ri(h * 0.13), 1)
    for wx in (x0 + w * 0.15, x1 - w * 0.15):
        cv2.circle(img, (_ri(wx), _ri(y1 - r)), r, (20, 20, 20), -1, AA)
    front = x1 if facing > 0 else x0
    cv2.rectangle(img, (_ri(front - facing * w * 0.05), _ri(y0 + h * 0.65)),
                  (_ri(front - facing * w * 0.01), _ri(y0 + h * 0.75)), (150, 240, 255), -1)


def draw_fish(img: np.ndarray, box: Box, color: tuple, t: int, facing: int, night: bool) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2 + facing * w * 0.1, (y0 + y1) / 2
    cv2.ellipse(img, (_ri(cx), _ri(cy)), (_ri(w * 0.38), _ri(h * 0.45)), 0, 0, 360, color, -1, AA)
    tail_x = cx - facing * w * 0.38
    tail = np.array([[tail_x, cy], [tail_x - facing * w * 0.22, y0], [tail_x - facing * w * 0.22, y1]], np.int32)
    cv2.fillPoly(img, [tail], color, AA)


@dataclass(frozen=True)
class Kind:
    """An object kind: its drawing, size (w, h) at 240-pixel frame height and scale 1, colours."""
    draw: Callable[..., None]
    size: tuple[float, float]
    colors: tuple[tuple[int, int, int], ...]


KINDS = {
    "person": Kind(draw_person, (14, 38), ((40, 40, 200), (200, 90, 30), (40, 160, 40), (30, 200, 230), (200, 200, 200))),
    "car": Kind(draw_car, (58, 26), ((30, 30, 200), (200, 200, 200), (40, 40, 40), (180, 90, 20), (40, 180, 220))),
    "bus": Kind(draw_bus, (130, 46), ((20, 140, 230), (60, 160, 60), (200, 120, 40), (40, 40, 190))),
    "fish": Kind(draw_fish, (26, 14), ((0, 200, 255), (200, 200, 60), (90, 90, 220))),
}


@dataclass(frozen=True)
class Scene:
    """A fixed-camera scene: background, where objects move (fractions of the frame height
    for the bottom edge of their box), perspective scale range, distractor kinds."""
    background: Callable[[np.random.Generator, int, int], np.ndarray]
    ground: tuple[float, float]
    scale: tuple[float, float]
    distractors: tuple[str, ...]
    night: bool = False
    noise: float = 4.0


SCENES = {
    "coral": Scene(reef, (0.35, 0.95), (1.2, 1.8), ("fish",)),
    "night": Scene(night_street, (0.55, 0.98), (0.7, 1.3), ("person", "bus"), night=True, noise=6.0),
    "roundabout": Scene(roundabout, (0.68, 0.95), (0.8, 1.1), ("person", "bus")),
    "taipei": Scene(city_street, (0.55, 0.98), (0.6, 1.0), ("car", "person")),
}
