"""Markdown report and plots of the accelerator table (``util/accel_report.py`` writes both).

Every number in the report is read from the table CSV and ``run_info.json`` beside it; the
prose around the numbers says how they were made and what ZigZag does and does not model.
"""
from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from config.tasks import bench_entries, get_bench_entry  # noqa: E402
from util.records.atomic import atomic_savefig, atomic_write_text  # noqa: E402
from util.reporting.markdown import md_table  # noqa: E402

from .evaluate import FUSION_NOTES  # noqa: E402
from .hardware import HARDWARE, MEMORY_CLASSES  # noqa: E402
from .table import OPERANDS, TOTAL, read_csv  # noqa: E402

REPORT = "README.md"
FINDINGS = "findings.md"  # written by hand from the table; included verbatim when present
TABLE = "accel_table.csv"
RUN_INFO = "run_info.json"
CLASS_LABELS = {"compute": "MACs", "reg": "PE registers", "sram": "on-chip SRAM", "dram": "DRAM"}


# ----------------------------------------------------------------------------- lookups
def short_names() -> dict[str, str]:
    """Benchmark model name -> the paper's id (V1..V6, N1..N4)."""
    return {e.name: e.task.paper_id for e in bench_entries() if e.scaling == "fold"}


class Totals:
    """The table's total rows, looked up by (model, variant, batch, hardware, fuse)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = [r for r in rows if r["layer_index"] == TOTAL]
        self.by_key = {(r["model"], r["variant"], r["batch"], r["hardware"], r["fuse"]): r
                       for r in self.rows}
        self.models = list(dict.fromkeys(r["model"] for r in self.rows if r["variant"] == "original"))
        self.hardware = list(dict.fromkeys(r["hardware"] for r in self.rows))
        self.folds = sorted({r["fold"] for r in self.rows})

    def get(self, model: str, variant: str, batch: int, hw: str, fuse: int) -> dict | None:
        if variant == "efficientnet":  # the baseline's row is under its own benchmark name
            model = get_bench_entry(model).efficientnet_name or model
        return self.by_key.get((model, variant, batch, hw, fuse))

    def ratio(self, model: str, variant: str, hw: str, fuse: int, col: str) -> float | None:
        """Per image: the variant over the original on the same images (the table's ratio)."""
        r = self.get(model, variant, 1, hw, fuse)
        return None if r is None or r[col] == "" else float(r[col])


def _x(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def _range(values: list[float | None]) -> str:
    vals = [v for v in values if v is not None]
    return "—" if not vals else f"{min(vals):.2f}–{max(vals):.2f} (median {statistics.median(vals):.2f})"


def _variants(t: Totals) -> list[str]:
    return [f"fold{f}" for f in t.folds if f > 1] + (
        ["efficientnet"] if any(r["variant"] == "efficientnet" for r in t.rows) else [])


def _label(variant: str) -> str:
    return "EffNet" if variant == "efficientnet" else f"f={variant.removeprefix('fold')}"


# ----------------------------------------------------------------------------- tables
def ratio_table(t: Totals, hw: str, names: dict[str, str]) -> str:
    """Per network: energy and cycles per image, each variant over the original, fusion off | on."""
    variants = _variants(t)
    headers = ["network", "original µJ/img", "original cycles/img"]
    for fuse in (0, 1):
        tag = "fused " if fuse else ""
        for v in variants:
            headers += [f"{tag}{_label(v)} energy ×", f"{tag}{_label(v)} cycles ×"]
    rows = []
    for m in t.models:
        base = t.get(m, "original", 1, hw, 0)
        row = [names.get(m, m), f"{base['energy_per_image_pJ'] / 1e6:.2f}" if base else "—",
               f"{base['cycles_per_image']:,.0f}" if base else "—"]
        for fuse in (0, 1):
            for v in variants:
                row += [_x(t.ratio(m, v, hw, fuse, "energy_ratio")),
                        _x(t.ratio(m, v, hw, fuse, "latency_ratio"))]
        rows.append(row)
    return md_table(headers, rows, align="l" + "r" * (len(headers) - 1))


def fusion_table(t: Totals, hw: str, names: dict[str, str], fold: int) -> str:
    """Per network, per image: fused over unfused (same network, same images), and the best of
    folding, fusing and both against the plain original."""
    headers = ["network", "fusion: original ×E", "×cycles", f"fusion: f={fold} ×E", "×cycles",
               f"f={fold}+fusion vs original: ×E", "×cycles", "DRAM B/img original", "fused original"]
    rows = []
    for m in t.models:
        o0, o1 = t.get(m, "original", fold, hw, 0), t.get(m, "original", fold, hw, 1)
        f0, f1 = t.get(m, f"fold{fold}", 1, hw, 0), t.get(m, f"fold{fold}", 1, hw, 1)
        if not all((o0, o1, f0, f1)):
            continue

        def r(a: dict, b: dict, col: str) -> str:
            return f"{a[col] / b[col]:.2f}"

        rows.append([names.get(m, m), r(o1, o0, "energy_per_image_pJ"), r(o1, o0, "cycles_per_image"),
                     r(f1, f0, "energy_per_image_pJ"), r(f1, f0, "cycles_per_image"),
                     r(f1, o0, "energy_per_image_pJ"), r(f1, o0, "cycles_per_image"),
                     f"{o0['dram_bytes_per_image']:,.0f}", f"{o1['dram_bytes_per_image']:,.0f}"])
    return md_table(headers, rows, align="l" + "r" * (len(headers) - 1))


def split_table(t: Totals, hw: str, fold: int, names: dict[str, str]) -> str:
    """Where the energy goes, per image: compute and each memory class, and memory energy by
    operand, original (batch f) and fold f, fusion off and on, summed over the networks."""
    sums: dict[tuple, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for m in t.models:
        for fuse in (0, 1):
            for variant, batch in (("original", fold), (f"fold{fold}", 1)):
                r = t.get(m, variant, batch, hw, fuse)
                if r is None:
                    continue
                fam = "NoScope" if names.get(m, "").startswith("N") else "game"
                for col in ["energy_compute_pJ", *[f"energy_{c}_pJ" for c in MEMORY_CLASSES],
                            *[f"energy_{op}_pJ" for op in OPERANDS], "energy_pJ",
                            *[f"dram_{op}_bytes" for op in OPERANDS]]:
                    sums[(fam, fuse, variant)][col] += r[col] / r["images"]
    headers = ["networks", "fusion", "network", "total µJ/img", "MACs", "PE reg", "SRAM", "DRAM",
               "weights (W)", "inputs (I)", "outputs (O)", "DRAM W kB/img", "DRAM I+O kB/img"]
    rows = []
    for (fam, fuse, variant), s in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "original")):
        rows.append([fam, "on" if fuse else "off", _label(variant) if variant != "original" else f"original (batch {fold})",
                     f"{s['energy_pJ'] / 1e6:.1f}",
                     *[f"{100 * s[c] / s['energy_pJ']:.0f}%" for c in
                       ["energy_compute_pJ", *[f"energy_{k}_pJ" for k in MEMORY_CLASSES]]],
                     *[f"{100 * s[f'energy_{op}_pJ'] / s['energy_pJ']:.0f}%" for op in OPERANDS],
                     f"{s['dram_W_bytes'] / 1e3:.1f}", f"{(s['dram_I_bytes'] + s['dram_O_bytes']) / 1e3:.1f}"])
    return md_table(headers, rows, align="lll" + "r" * (len(headers) - 3))


def layer_table(rows: list[dict], model: str, hw: str, fold: int) -> str:
    """One network's layers, per image: original at batch f next to fold f (fusion off)."""
    def layers(variant: str, batch: int) -> list[dict]:
        return sorted((r for r in rows if r["model"] == model and r["variant"] == variant
                       and r["batch"] == batch and r["hardware"] == hw and r["fuse"] == 0
                       and r["layer_index"] != TOTAL), key=lambda r: int(r["layer_index"]))

    orig, folded = layers("original", fold), layers(f"fold{fold}", 1)
    headers = ["layer", "MACs/img", f"f={fold} MACs ×", "energy ×", "cycles ×", "util", f"f={fold} util",
               "DRAM W B/img", f"f={fold}", "DRAM I+O B/img", f"f={fold} "]
    out = []
    for o, f in zip(orig, folded):
        io_o = (o["dram_I_bytes"] + o["dram_O_bytes"]) / o["images"]
        io_f = (f["dram_I_bytes"] + f["dram_O_bytes"]) / f["images"]
        out.append([o["layer"].strip("/").replace("/Conv", "").replace("/Gemm", " (fc)"),
                    f"{o['macs_per_image']:,.0f}", f"{f['macs_per_image'] / o['macs_per_image']:.2f}",
                    _x(f["energy_ratio"] or None), _x(f["latency_ratio"] or None),
                    f"{o['util']:.2f}", f"{f['util']:.2f}",
                    f"{o['dram_W_bytes'] / o['images']:,.0f}", f"{f['dram_W_bytes'] / f['images']:,.0f}",
                    f"{io_o:,.0f}", f"{io_f:,.0f}"])
    return md_table(headers, out, align="l" + "r" * (len(headers) - 1))


# ----------------------------------------------------------------------------- figures
def plot_ratios(t: Totals, names: dict[str, str], path: Path) -> None:
    variants = _variants(t)
    fig, axes = plt.subplots(len(t.hardware), 2, figsize=(13, 3.6 * len(t.hardware)), squeeze=False)
    series = [(v, fuse) for fuse in (0, 1) for v in variants]
    width = 0.8 / len(series)
    colors = plt.get_cmap("tab10")
    for i, hw in enumerate(t.hardware):
        for j, (col, what) in enumerate((("energy_ratio", "energy"), ("latency_ratio", "cycles"))):
            ax = axes[i][j]
            for k, (v, fuse) in enumerate(series):
                ys = [t.ratio(m, v, hw, fuse, col) for m in t.models]
                xs = [n + (k - (len(series) - 1) / 2) * width for n in range(len(t.models))]
                ax.bar([x for x, y in zip(xs, ys) if y is not None], [y for y in ys if y is not None],
                       width, color=colors(variants.index(v)), hatch="//" if fuse else None,
                       edgecolor="white" if fuse else None,
                       label=f"{_label(v)}{' fused' if fuse else ''}")
            ax.axhline(1.0, color="black", lw=0.8)
            ax.set_xticks(range(len(t.models)), [names.get(m, m) for m in t.models])
            ax.set_title(f"{hw}: {what} per image vs the original (same images, same fusion)")
            ax.set_ylabel(f"{what} ×")
            if i == 0 and j == 0:
                ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


def plot_split(t: Totals, names: dict[str, str], fold: int, path: Path) -> None:
    """Energy per image by component, relative to the unfused original at batch f, averaged
    over the networks."""
    comps = ["energy_compute_pJ", *[f"energy_{c}_pJ" for c in MEMORY_CLASSES]]
    labels = [CLASS_LABELS["compute"], *[CLASS_LABELS[c] for c in MEMORY_CLASSES]]
    bars = [(v, b, fuse) for fuse in (0, 1) for v, b in (("original", fold), (f"fold{fold}", 1))]
    fig, axes = plt.subplots(1, len(t.hardware), figsize=(6 * len(t.hardware), 3.8), squeeze=False)
    colors = plt.get_cmap("Set2")
    for i, hw in enumerate(t.hardware):
        ax = axes[0][i]
        for k, (v, b, fuse) in enumerate(bars):
            shares = [0.0] * len(comps)
            n = 0
            for m in t.models:
                ref, r = t.get(m, "original", fold, hw, 0), t.get(m, v, b, hw, fuse)
                if ref is None or r is None:
                    continue
                n += 1
                for c, comp in enumerate(comps):
                    shares[c] += (r[comp] / r["images"]) / (ref["energy_pJ"] / ref["images"])
            bottom = 0.0
            for c, s in enumerate(shares):
                ax.bar(k, s / max(n, 1), bottom=bottom, color=colors(c), label=labels[c] if k == 0 else None)
                bottom += s / max(n, 1)
        ax.set_xticks(range(len(bars)), [f"{'original' if v == 'original' else _label(v)}\n"
                                         f"{'fused' if fuse else 'unfused'}" for v, _, fuse in bars])
        ax.set_title(f"{hw}: energy per image (mean over networks)")
        ax.set_ylabel(f"× original (batch {fold}, unfused)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, path)
    plt.close(fig)


# ----------------------------------------------------------------------------- report
def _relu_section(path: Path | None) -> str:
    if path is None or not Path(path).exists():
        return ("**Awaiting the trained checkpoints.** `util/relu_density.py` measures, on a trained "
                "network and a data split, the share of every layer's pre-ReLU outputs that are <= 0 "
                "and scales this table's per-layer MACs and energy by it (what an accelerator that "
                "predicts and skips those outputs, as the ICS'21 predictive-fusion design does, would "
                "save at best). The V1 checkpoints at f = 1 and f = 4 of the released network are "
                "not trained yet; once they are (GPU), run:\n\n```\n"
                "python3 util/relu_density.py --checkpoint <runs>/lol/goldnumber-fraction/fold1/best.pth "
                "<runs>/lol/goldnumber-fraction/fold4/best.pth --split test --csv model_files/accel/relu_density.csv\n"
                "python3 util/accel_report.py --report-only --relu-density model_files/accel/relu_density.csv\n```\n"
                "No figure is given here until then.")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["variant"], r["hardware"], r["split"], r["images"])].append(r)

    def per_image(g: list[dict], col: str) -> float:
        return sum(float(r[col]) for r in g)

    # energy per image left after skipping, by (task, hardware, split): the original's, which
    # every network of the same task is set against
    left = {k: per_image(g, "energy_per_image_pJ") - per_image(g, "energy_saved_per_image_pJ")
            for k, g in groups.items()}
    original = {(t, hw, sp): v for (t, variant, hw, sp, _), v in left.items() if variant == "original"}
    body = []
    for (task, variant, hw, split, images), g in groups.items():
        energy, saved = per_image(g, "energy_per_image_pJ"), per_image(g, "energy_saved_per_image_pJ")
        base = original.get((task, hw, split))
        body.append([task, variant, hw, f"{split} ({images})",
                     f"{100 * per_image(g, 'macs_saved_per_image') / per_image(g, 'macs_per_image'):.1f}%",
                     f"{100 * saved / energy:.1f}%", f"{energy / 1e6:.2f}", f"{(energy - saved) / 1e6:.2f}",
                     "—" if base is None else f"{(energy - saved) / base:.2f}",
                     " ".join("—" if r["share_nonpositive"] == "" else f"{100 * float(r['share_nonpositive']):.0f}%"
                              for r in g)])
    table = md_table(["task", "network", "hardware", "split (images)", "MACs saved", "energy saved",
                      "µJ/image", "µJ/image after skipping", "after skipping × original",
                      "share <= 0 per layer"], body, align="llllrrrrrl")
    return ("Per image, from ZigZag's unfused per-layer energy scaled by the share of each layer's "
            "pre-ReLU outputs that are <= 0, measured on the split named (`util/relu_density.py`, "
            "columns in its CSV). `after skipping × original`: this network's energy per image after "
            "skipping over the original's after skipping, on the same hardware.\n\n" + table)


BAND_TABLE = "band_table.csv"  # util/accel_sim.py rows of band-limited and direct networks


def _band_section(path: Path) -> str:
    """Band-limited networks per image against the same network and batch without band-limiting,
    both from ``path`` (one search setting, so the ratios compare like with like)."""
    totals = [r for r in read_csv(path) if r["layer_index"] == TOTAL and not int(r["fuse"])]
    direct = {(r["model"], r["variant"], int(r["batch"]), r["hardware"]): r
              for r in totals if "-band" not in r["variant"]}
    names = short_names()
    body = []
    for r in sorted(totals, key=lambda r: (names.get(r["model"], r["model"]), r["hardware"],
                                           r["variant"].split("-band")[0], int(r["batch"]), r["variant"])):
        base, _, cr = r["variant"].partition("-band")
        if not cr:
            continue
        d = direct.get((r["model"], base, int(r["batch"]), r["hardware"]))

        def times(col: str) -> str:  # this network's figure over the direct one's
            return "—" if d is None else f"{float(r[col]) / float(d[col]):.2f}"

        body.append([names.get(r["model"], r["model"]), r["hardware"], f"{base} (batch {r['batch']})", f"{cr}%",
                     f"{float(r['macs_per_image']) / 1e6:.2f} M",
                     "—" if d is None else f"{float(d['macs_per_image']) / 1e6:.2f} M",
                     times("energy_per_image_pJ"), times("cycles_per_image"), times("dram_bytes_per_image")])
    search = sorted({(r["opt"], r["lpf_limit"]) for r in totals})
    return (f"From `{path.name}` (fusion off; mapping search {', '.join(f'{o}, lpf_limit {lpf}' for o, lpf in search)}), "
            "each band-limited network against the same network and batch without band-limiting, "
            "searched with the same settings; `× direct` per image.\n\n"
            + md_table(["network", "hardware", "variant", "discarded", "MACs/image", "direct MACs/image",
                        "energy × direct", "cycles × direct", "DRAM bytes × direct"], body, align="lllrrrrrr"))


def write_report(out_dir: Path | str, relu_density_csv: Path | str | None = None,
                 band_csv: Path | str | None = None) -> Path:
    """Write ``README.md`` and the plots under ``out_dir`` from its table; return the report path."""
    out_dir = Path(out_dir)
    rows = read_csv(out_dir / TABLE)
    info = json.loads((out_dir / RUN_INFO).read_text()) if (out_dir / RUN_INFO).exists() else {}
    t, names = Totals(rows), short_names()
    fold = max(t.folds)
    plot_ratios(t, names, out_dir / "ratios.png")
    plot_split(t, names, fold, out_dir / "energy_split.png")
    comp = info.get("compute", info.get("last", {}))
    search = comp.get("search", {})
    lines = [
        "# FoldedCNNs on spatial accelerators (ZigZag)",
        "",
        "Does folding cut energy and latency per image on accelerators that are not GPUs, where, and "
        "how does it compare with fusing layers? Every game (V1-V6) and NoScope (N1-N4) network at "
        f"f = {', '.join(map(str, t.folds))}, plus the EfficientNet-style baselines of the game networks, "
        f"on ZigZag {comp.get('zigzag', '?')}'s shipped accelerators, inter-layer fusion off and on. "
        f"Data: [`{TABLE}`]({TABLE}) (one row per layer and a `total` row per run; columns in "
        "`util/accel/table.py`).",
        "",
        *([(out_dir / FINDINGS).read_text().rstrip(), ""] if (out_dir / FINDINGS).exists() else []),
        "## How it was measured",
        "",
        f"* `python3 util/accel_report.py` ran {comp.get('runs', '?')} ZigZag runs "
        f"({comp.get('layers_searched', '?')} distinct layer searches, {comp.get('layers_from_cache', 0)} "
        f"from cache) in **{comp.get('wall_s', 0) / 60:.1f} min wall** on {comp.get('device', '?')} "
        f"with {comp.get('workers', '?')} worker processes (commit {comp.get('git', '?')}). Mapping search: "
        f"best {search.get('opt', '?')} mapping per layer, LOMA lpf_limit {search.get('lpf_limit', '?')}, "
        f"{search.get('spatial_mappings', '?')} spatial mappings (ZigZag's defaults).",
        "* Fair batch: fold f is compared with the original **on the same f images**: the FoldedCNN runs "
        "one input of f images, the original a batch of f. Per-image figures divide a run's totals by "
        "its images; a ratio < 1 means cheaper than the original. The EfficientNet-style baseline "
        "(one image per input) is compared with the original at batch 1.",
        "* Networks are the registry's (`models.build_model`), exported to ONNX (opset 13). The game "
        "CNN's max-pools have no padding, as in the released network (`MaxPool2d(3, stride)`).",
        "* ZigZag's ONNX front end models 8-bit weights and activations with 16-bit partial sums and "
        "costs Conv and Gemm layers only: ReLU, max-pool and flatten are free. Its MAC counts equal "
        "thop's for every registry network (`tests/test_accel.py`).",
        "* Accelerators (ZigZag's descriptions, unchanged):",
        *[f"  * `{hw}`: {HARDWARE[hw].summary}." for hw in t.hardware],
        "* Energy is split into MACs, per-PE registers, on-chip SRAM and DRAM "
        "(`util/accel/hardware.py` classes each memory of a description), and memory energy by "
        "operand: weights (W), input activations (I), outputs and partial sums (O).",
        "",
    ]
    for hw in t.hardware:
        lines += [f"## Per image, against the original: {hw}", "",
                  "Energy × and cycles × are per image, each network over the original on the same images "
                  "(fused columns: both fused).", "", ratio_table(t, hw, names), ""]
        for v in _variants(t):
            for fuse in (0, 1):
                e = [t.ratio(m, v, hw, fuse, "energy_ratio") for m in t.models]
                c = [t.ratio(m, v, hw, fuse, "latency_ratio") for m in t.models]
                if any(x is not None for x in e):
                    lines.append(f"* {_label(v)}, fusion {'on' if fuse else 'off'}: energy × {_range(e)}; "
                                 f"cycles × {_range(c)}.")
        lines.append("")
    lines += ["![ratios](ratios.png)", "",
              f"## Where: memory levels and operands (original at batch {fold} vs f = {fold})", "",
              "Energy per image, summed over the networks of each family; percentages of that row's "
              "total. DRAM traffic per image by operand.", ""]
    for hw in t.hardware:
        lines += [f"**{hw}**", "", split_table(t, hw, fold, names), ""]
    lines += ["![energy split](energy_split.png)", "",
              f"## Where: layers (V1 and N1, fusion off, original at batch {fold} vs f = {fold})", ""]
    for m in [m for m in t.models if names.get(m) in ("V1", "N1")]:
        for hw in t.hardware:
            lines += [f"**{names[m]} on {hw}**", "", layer_table(rows, m, hw, fold), ""]
    lines += [f"## Folding vs fusing layers (batch {fold} original vs f = {fold})", "",
              "Fused over unfused for the same network on the same images, and f = "
              f"{fold} with fusion against the unfused original.", ""]
    for hw in t.hardware:
        lines += [f"**{hw}**", "", fusion_table(t, hw, names, fold), ""]
    band_path = Path(band_csv) if band_csv is not None else out_dir / BAND_TABLE
    lines += ["## Band-limiting", "",
              *([_band_section(band_path), ""] if band_path.exists() else []),
              ("Band-limited networks run through `util/accel_sim.py MODEL "
               "--band-limit CR`: each band-limited conv is exported in its truncated-DFT (\"dft\") form "
               "(`util/accel/band_export.py`), every product of it (column and row transforms, the "
               "per-frequency channel mixing as a grouped 1 x 1 conv, the inverse transforms) a layer "
               "ZigZag costs; the filter spectrum is precomputed, and only reshapes and transposes are "
               "free. The \"fft\" algorithm has no such form (an FFT is not a Conv/Gemm/MatMul) and is a "
               "one-line error. `model_files/accel/band_table.sh` makes the table above."),
              "", "## Skipping work that ReLU zeroes (predictive)", "", _relu_section(relu_density_csv), "",
              "## What ZigZag's inter-layer fusion is (and is not)", "", FUSION_NOTES, "",
              "## Validation", "",
              "`tests/test_accel.py` runs ZigZag's shipped ResNet-18 ONNX on its shipped TPU-like accelerator "
              "through this wrapper (per-layer stages, deduplication, parallel workers) and gets exactly the "
              "energy and latency ZigZag 3.9.1's own tests expect: 1,871,436,380.656 pJ / 3,865,041 cycles "
              "unfused and 1,735,241,704.224 pJ / 3,783,401 cycles with `exploit_data_locality` "
              "(`tests/main/test_origin/test_tpu_like.py`, `tests/main/test_with_exploit_data_locality/"
              "test_tpu_like.py` of the zigzag-dse 3.9.1 wheel). It also checks that our MAC counts equal "
              "thop's and that fusion never adds DRAM traffic.", "",
              "## Reproduce", "", "```",
              "bash util/setup_env.sh",
              "python3 util/accel_report.py                 # the table (cached per layer under runs/accel_cache)",
              "python3 util/accel_report.py --report-only   # this report from the CSV",
              "python3 util/accel_sim.py game_lol/goldnumber-fraction --folds 1 2 4 --both --layers",
              "```", ""]
    path = out_dir / REPORT
    atomic_write_text(path, "\n".join(lines))
    return path
