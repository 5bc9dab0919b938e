"""What each game-scraping task reads: the HUD text template, the class it means, and text
that shows no valid value ("other").

The paper's training data is synthetic text following a per-task template (section 5 of
PAPER_NOTES). ``TEXT_SPECS`` is the one table, keyed by task name, that says for each task

* ``sample(cls, rng)``: a HUD string whose label is ``cls`` (e.g. "7" -> "14.7k");
* ``label(text)``: the class a reader of ``text`` must output ("other" if none) -- the
  ground truth, so ``label(sample(c, rng)) == c`` for every class (tested);
* ``invalid(rng)``: task-specific text that looks like the HUD but carries no valid value;
* ``clip_sides``: crop edges a HUD cropper may cut into without hiding the label;
* ``context``: words printed next to the value on the real HUD (drawn as distractors).

Display rules (chosen here, documented because the archive's are not published):

* LoL gold is shown in thousands with one decimal, truncated: 14,790 gold -> "14.7k"
  (sometimes "K"). Some HUD skins zero-pad the integer part to two digits ("07.3k").
  goldnumber-fraction: class = the tenths digit ("14.7k" -> "7", "07.3k" -> "3").
  goldnumber-int: class = the integer digits *as displayed*: "7.3k" -> "7",
  "07.3k" -> "07", "14.7k" -> "14"; so "0"-"9" are unpadded one-digit values and
  "00"-"09" their zero-padded forms. Plain gold without "k" ("850") is "other".
* LoL timer "MM:SS" (always two minute digits), class = MM, "00"-"60".
* SoT coins "10,438", class = the thousands part without leading zero, "1"-"14";
  fewer than 1,000 coins ("438") or 15,000 and more are "other".
* SoT time remaining is shown as whole minutes with an "m" suffix ("17m"), class =
  minutes "0"-"25"; 26m and more, and seconds ("45s"), are "other".
* Apex squads left: the number next to the "SQUADS LEFT" label, "0"-"20"; larger
  numbers (e.g. a kill counter) are "other".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

OTHER = "other"
Rng = np.random.Generator

# Unrelated HUD words and symbols, for "other" crops of every task.
UNRELATED = ("LVL", "KDA", "CS", "XP", "HP", "MP", "FPS", "PING", "ms", "ALIVE", "KILLS", "GOLD",
             "TIME", "MENU", "ESC", "TAB", "DEAD", "AFK", "LOOT", "MAP", "VS", "+", "?", "!",
             "Ready", "Paused", "Shop", "Respawn", "Victory", "Defeat", "Wave", "ammo")


@dataclass(frozen=True)
class TextSpec:
    """How one task's HUD value is written and read (see the module docstring)."""
    sample: Callable[[str, Rng], str]
    label: Callable[[str], str]
    invalid: Callable[[Rng], str]
    clip_sides: tuple[str, ...]
    context: tuple[str, ...] = ()


def _pick(rng: Rng, options):
    return options[int(rng.integers(len(options)))]


def random_word(rng: Rng) -> str:
    """An unrelated word: a HUD term or random letters (never a valid value)."""
    if rng.random() < 0.6:
        return _pick(rng, UNRELATED)
    letters = "ABCDEFGHJKLMNPRSTUVWXYZabcdefghijkmnoprstuvwxyz"
    return "".join(_pick(rng, letters) for _ in range(int(rng.integers(1, 5))))


# --- League of Legends gold ("14.7k") --------------------------------------------------
_GOLD = re.compile(r"^(\d{1,2})\.(\d)[kK]$")


def format_gold(integer: int, tenths: int, pad: bool, rng: Rng) -> str:
    """Gold in thousands: ``format_gold(14, 7, False) == "14.7k"``; ``pad`` gives "07.3k"."""
    k = "K" if rng.random() < 0.15 else "k"
    return f"{integer:02d}.{tenths}{k}" if pad else f"{integer}.{tenths}{k}"


def _gold_integer(rng: Rng) -> int:
    # mostly mid-game values, every 0-99 possible
    return int(rng.integers(0, 100) if rng.random() < 0.5 else rng.integers(1, 40))


def _gold_invalid(rng: Rng) -> str:
    kind = rng.random()
    if kind < 0.5:
        return str(int(rng.integers(0, 10000)))           # raw gold, no "k"
    if kind < 0.75:
        return "+" + str(int(rng.integers(1, 1500)))      # gold gain popup
    return _pick(rng, ("--", "-.-k", "k", "--.-k"))


def _fraction_sample(cls: str, rng: Rng) -> str:
    pad = rng.random() < 0.1
    return format_gold(_gold_integer(rng), int(cls), pad, rng)


def _fraction_label(text: str) -> str:
    m = _GOLD.match(text)
    return m.group(2) if m else OTHER


def _int_sample(cls: str, rng: Rng) -> str:
    return format_gold(int(cls), int(rng.integers(0, 10)), len(cls) == 2, rng)


def _int_label(text: str) -> str:
    m = _GOLD.match(text)
    return m.group(1) if m else OTHER


# --- League of Legends game timer ("MM:SS") --------------------------------------------
_TIMER = re.compile(r"^(\d\d):([0-5]\d)$")


def _timer_sample(cls: str, rng: Rng) -> str:
    return f"{int(cls):02d}:{int(rng.integers(0, 60)):02d}"


def _timer_label(text: str) -> str:
    m = _TIMER.match(text)
    return m.group(1) if m and int(m.group(1)) <= 60 else OTHER


def _timer_invalid(rng: Rng) -> str:
    kind = rng.random()
    if kind < 0.4:
        return _pick(rng, ("--:--", "--", ":", "-:--"))
    if kind < 0.7:
        return str(int(rng.integers(0, 1000)))
    return "+" + str(int(rng.integers(1, 100)))


# --- Sea of Thieves coins ("10,438") ----------------------------------------------------
_COINS = re.compile(r"^([1-9]\d?),(\d{3})$")


def _coins_sample(cls: str, rng: Rng) -> str:
    return f"{int(cls)},{int(rng.integers(0, 1000)):03d}"


def _coins_label(text: str) -> str:
    m = _COINS.match(text)
    return str(int(m.group(1))) if m and 1 <= int(m.group(1)) <= 14 else OTHER


def _coins_invalid(rng: Rng) -> str:
    kind = rng.random()
    if kind < 0.5:
        return str(int(rng.integers(0, 1000)))                           # under 1,000
    if kind < 0.8:
        return f"{int(rng.integers(15, 100))},{int(rng.integers(0, 1000)):03d}"  # out of range
    return _pick(rng, ("--", ",", "-,---"))


# --- Sea of Thieves time remaining ("17m") ----------------------------------------------
_MINUTES = re.compile(r"^(0|[1-9]\d?)m$")


def _minutes_sample(cls: str, rng: Rng) -> str:
    return f"{int(cls)}m"


def _minutes_label(text: str) -> str:
    m = _MINUTES.match(text)
    return m.group(1) if m and int(m.group(1)) <= 25 else OTHER


def _minutes_invalid(rng: Rng) -> str:
    kind = rng.random()
    if kind < 0.45:
        return f"{int(rng.integers(26, 100))}m"
    if kind < 0.8:
        return f"{int(rng.integers(0, 60))}s"
    return _pick(rng, ("--", "m", "-m"))


# --- Apex Legends squads left ("12") ----------------------------------------------------
_SQUADS = re.compile(r"^(0|[1-9]\d?)$")


def _squads_sample(cls: str, rng: Rng) -> str:
    return cls


def _squads_label(text: str) -> str:
    m = _SQUADS.match(text)
    return m.group(1) if m and int(m.group(1)) <= 20 else OTHER


def _squads_invalid(rng: Rng) -> str:
    kind = rng.random()
    if kind < 0.5:
        return str(int(rng.integers(21, 100)))
    return _pick(rng, ("--", "-", "SQ", "LEFT", "x"))


# The one table: task name -> how its value is written and read.
TEXT_SPECS: dict[str, TextSpec] = {
    "lol/goldnumber-fraction": TextSpec(_fraction_sample, _fraction_label, _gold_invalid,
                                        clip_sides=("top", "bottom", "left")),
    "lol/goldnumber-int": TextSpec(_int_sample, _int_label, _gold_invalid,
                                   clip_sides=("top", "bottom", "right")),
    "lol/timer-minutes": TextSpec(_timer_sample, _timer_label, _timer_invalid,
                                  clip_sides=("top", "bottom", "right")),
    "sot/coin_count-digits_3_4-v2": TextSpec(_coins_sample, _coins_label, _coins_invalid,
                                             clip_sides=("top", "bottom", "right")),
    "sot/timer3": TextSpec(_minutes_sample, _minutes_label, _minutes_invalid,
                           clip_sides=("top", "bottom", "right"), context=("TIME", "LEFT")),
    "apex/squad_count_v2": TextSpec(_squads_sample, _squads_label, _squads_invalid,
                                    clip_sides=("top", "bottom"), context=("SQUADS", "LEFT")),
}


def text_spec(task_name: str) -> TextSpec:
    """The spec of a game task; KeyError names the tasks that have one."""
    try:
        return TEXT_SPECS[task_name]
    except KeyError:
        raise KeyError(f"no text template for {task_name!r}; templates exist for "
                       f"{', '.join(TEXT_SPECS)}") from None


def sample_text(task_name: str, cls: str, rng: Rng) -> str:
    """A HUD string of class ``cls``; for "other", an invalid value or an unrelated word."""
    spec = text_spec(task_name)
    if cls == OTHER:
        return spec.invalid(rng) if rng.random() < 0.6 else random_word(rng)
    return spec.sample(cls, rng)


def label_of(task_name: str, text: str) -> str:
    """The class a correct reader outputs for ``text`` (the ground truth)."""
    return text_spec(task_name).label(text)

