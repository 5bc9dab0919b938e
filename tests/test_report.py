"""util/report.py and util/paper.py: the report puts a (fake) run next to the paper's tables."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from config.tasks import get_task, task_names
from tests.conftest import assert_one_line_error, run_cli
from util.reporting.markdown import md_table
from util.reporting.paper import load_paper_results, paper_accuracy, paper_speedup
from util.training.layout import CONFIG, REQUIRED_RESULT_FIELDS, RESULTS, STATS, run_dir

TASKS = ("lol/goldnumber-fraction", "noscope-coral")
TRAIN_HEADER = ",".join(REQUIRED_RESULT_FIELDS)  # a results.csv from before the columns added later
STATS_HEADER = ("epoch,classes,train_loss,train_top1,train_top5,val_loss,val_top1,val_top5,"
                "test_loss,test_top1,test_top5,seconds")  # from before train_seconds
INFER_HEADER = ("Model,Trial,Batch Size,Mode,Fold,Throughput,FLOPs/sec,TputNorm,FLOPNorm,"
                "Backend,Precision,Utilization,ChannelAlign,GPU")


def make_savedir(root: Path) -> Path:
    """2 tasks x folds 1, 2 with stats.csv and config.json, like train.py writes them."""
    save = root / "runs"
    rows = [TRAIN_HEADER]
    for t, task in enumerate(TASKS):
        for fold in (1, 2):
            rows.append(f"{task},{fold},{90 + t + fold},{91.25 + t - fold},99.5,4,5,{3725 + fold},cpu")
            run = run_dir(save, task, fold)
            run.mkdir(parents=True)
            lines = [STATS_HEADER] + [
                f"{e},{min(11, 2 + 3 * e) if fold > 1 else 11},1.0,50,80,1.0,{60 + 5 * e + t - 4 * fold},90,"
                f"1.0,{59 + 5 * e},90,1.5" for e in range(5)]
            (run / STATS).write_text("\n".join(lines) + "\n")
            (run / CONFIG).write_text(json.dumps({
                "task": task, "fold": fold, "git": "0123456789abcdef0123", "device": "cpu",
                "versions": {"python": "3.11.2", "torch": "2.14.1"},
                "command": ["python3", "train.py", str(save), "--epochs", "5"]}))
    (save / RESULTS).write_text("\n".join(rows) + "\n")
    return save


def make_inference_csv(root: Path) -> Path:
    """Two trials per config; V1 f=2 medians 1000 (original) and 1500 (folded) img/s."""
    lines = [INFER_HEADER]
    for trial, (o, f2, eff) in enumerate([(900.0, 1400.0, 1100.0), (1100.0, 1600.0, 1300.0)], 1):
        lines += [f"lol/goldnumber-fraction,{trial},1024,Original,1,{o},1e12,1,1,eager,fp16,,1,",
                  f"lol/goldnumber-fraction,{trial},1024,Folded,2,{f2},1.5e12,1,1,eager,fp16,,1,",
                  f"lol/goldnumber-fraction,{trial},1024,EfficientNet,2,{eff},1e12,1,1,eager,fp16,,1,",
                  f"noscope_coral,{trial},1024,Original,1,{o * 2},1e12,1,1,eager,fp16,,1,",
                  f"noscope_coral,{trial},1024,Folded,2,{o * 5},1e12,1,1,eager,fp16,,1,"]
    path = root / "results.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _section(text: str, start: str) -> str:
    """The Markdown section that begins with heading ``start``."""
    tail = text.split(start, 1)[1]
    return tail.split("\n## ", 1)[0]


def _row(text: str, *cells: str) -> str:
    """The first table row containing all ``cells``."""
    for line in text.splitlines():
        if line.startswith("|") and all(c in line for c in cells):
            return line
    raise AssertionError(f"no table row with {cells} in:\n{text}")


def test_paper_results_cover_registry():
    data = load_paper_results()
    reported = {"V1", "V2", "V3", "V4", "V5", "V6", "N1", "N2", "N3", "N4", "CIFAR-10", "CIFAR-100"}
    ids = {get_task(n).paper_id: n for n in task_names()}
    assert reported <= set(ids), "registry lost a task the paper reports"
    for pid in reported:
        entry = data["tasks"][ids[pid]]
        assert entry["paper_id"] == pid
        assert paper_accuracy(ids[pid], 1) is not None
    for pid in reported - {"CIFAR-10", "CIFAR-100"}:
        for f in (2, 3, 4):
            assert paper_accuracy(ids[pid], f) is not None and paper_speedup(ids[pid], f) is not None
    assert paper_accuracy("lol/goldnumber-fraction", 2) == 97.64
    assert paper_speedup("noscope-taipei", 2) == 0.90
    assert paper_accuracy("cifar10", 2) is None and paper_accuracy("cifar10", 4) == 92.10
    assert paper_speedup("cifar100", 4) is None


def test_md_table_escapes_and_checks_width():
    table = md_table(["a", "b"], [["x|y", 1]], align="lr")
    assert table.splitlines() == ["| a | b |", "|:---|---:|", "| x\\|y | 1 |"]
    with pytest.raises(ValueError):
        md_table(["a", "b"], [[1]])


def test_report_full(tmp_path):
    save = make_savedir(tmp_path)
    results = make_inference_csv(tmp_path)
    proc = run_cli("util/report.py", str(save), "--results", str(results),
                   "--command", "./run_inference.sh results.csv")
    assert proc.returncode == 0, proc.stderr
    text = (save / "report.md").read_text()

    acc = _section(text, "## 1. Accuracy")
    v1f2 = _row(acc, "`lol/goldnumber-fraction`", "| V1 | 2 |")
    assert "| 89.25 | 97.64 | -8.39 |" in v1f2  # ours, paper, difference
    assert "-1.00 / +0.00" in v1f2  # vs f=1: ours 90.25 -> 89.25, paper 97.64 -> 97.64
    assert "5 / 1500" in v1f2 and "short run" in v1f2
    assert "98.64" in _row(acc, "`noscope-coral`", "| N1 | 2 |")
    assert "1:02:07" in _row(acc, "| N1 | 2 |")  # 3727 s

    curves = _section(text, "## 2. Training curves")
    pngs = re.findall(r"!\[[^]]*\]\((report_files/[^)]+\.png)\)", text)
    assert len([p for p in pngs if "curves_" in p]) == 2, curves
    for p in pngs:
        data = (save / p).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, p

    inf = _section(text, "## 3. Inference throughput")
    assert "Measured on CPU" in inf
    folded = _row(inf, "`lol/goldnumber-fraction`", "Folded")
    assert "| 2 | 1,500 | 1.50 | 1.13 |" in folded  # trials, median img/s, ours, paper
    assert "| 1.5 |" in folded  # TFLOP/s median
    assert "1.32–1.51" in _row(inf, "EfficientNet")
    assert "| 2.50 | 1.39 |" in _row(inf, "`noscope_coral`", "Folded")
    assert any("speedup_" in p for p in pngs)

    ai = _section(text, "## 4. Arithmetic intensity")
    assert "88–102" in _row(ai, "`game_lol/goldnumber-fraction`")
    assert re.search(r"\| `noscope_coral` \| \d+\.\d \|", ai)
    prov = _section(text, "## 6. How")
    assert "python3 train.py" in prov and "torch 2.14.1" in prov
    assert "./run_inference.sh results.csv" in prov
    assert not list(save.glob(".report*")), "temporary files left behind"


def test_report_without_inference_and_custom_out(tmp_path):
    save = make_savedir(tmp_path)
    out = tmp_path / "elsewhere" / "r.md"
    proc = run_cli("util/report.py", str(save), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    inf = _section(text, "## 3. Inference throughput")
    assert "No inference CSV was given" in inf and "./run_inference.sh results.csv" in inf
    assert (tmp_path / "elsewhere" / "r_files").is_dir()
    assert "(r_files/curves_noscope-coral.png)" in text
    # a named but absent CSV degrades the same way, with a warning
    proc = run_cli("util/report.py", str(save), "--results", str(tmp_path / "nope.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "nope.csv` does not exist" in (save / "report.md").read_text()


def test_report_quotes_measured_order_agreement(tmp_path):
    save = make_savedir(tmp_path)
    assert run_cli("util/report.py", str(save)).returncode == 0
    assert "no run here measured it" in (save / "report.md").read_text()
    lines = (save / "results.csv").read_text().splitlines()
    lines[0] += ",order_agreement"
    lines[1:] = [ln + (",87.05" if ",2," in ln and ln.startswith("lol/") else ",") for ln in lines[1:]]
    (save / "results.csv").write_text("\n".join(lines) + "\n")
    assert run_cli("util/report.py", str(save)).returncode == 0
    text = (save / "report.md").read_text()
    assert "`lol/goldnumber-fraction` f = 2: 87.05%" in text and "noscope-coral` f = 2:" not in text


def test_efficientnet_rows_get_their_own_table_and_curve(tmp_path):
    """An EfficientNet-style run is fold 1 too: it must not replace the original's row."""
    save = make_savedir(tmp_path)
    lines = (save / "results.csv").read_text().splitlines()
    lines[0] += ",scaling"
    lines[1:] = [ln + ",fold" for ln in lines[1:]]
    lines.append("lol/goldnumber-fraction,1,80.5,79.25,99.5,4,5,3000,cpu,efficientnet")
    (save / "results.csv").write_text("\n".join(lines) + "\n")
    run = run_dir(save, "lol/goldnumber-fraction", 1, efficientnet=True)
    run.mkdir(parents=True)
    (run / STATS).write_text(STATS_HEADER + "\n" + "\n".join(f"{e},11,1.0,50,80,1.0,{50 + e},90,1.0,49,90,1.5"
                                                              for e in range(5)) + "\n")
    assert run_cli("util/report.py", str(save)).returncode == 0
    text = (save / "report.md").read_text()
    acc = _section(text, "## 1. Accuracy")
    ours_f1 = _row(acc.split("### EfficientNet")[0], "`lol/goldnumber-fraction`", "| 1 |")
    assert "| 90.25 |" in ours_f1 and "79.25" not in acc.split("### EfficientNet")[0]
    eff = _row(acc.split("### EfficientNet")[1], "`lol/goldnumber-fraction`")
    assert "| 79.25 | 90.25 | -11.00 |" in eff and "| 97.64 |" in eff
    assert "84.9–96.4%" in acc
    assert "EfficientNet-style" in _section(text, "## 6.")


def test_report_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_one_line_error(run_cli("util/report.py", str(empty)),
                          "not a training output folder", "python3 train.py")
    assert not (empty / "report.md").exists()
    save = make_savedir(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("Model,Trial\nx,1\n")
    assert_one_line_error(run_cli("util/report.py", str(save), "--results", str(bad)),
                          "bad.csv", "Throughput")
    (save / "results.csv").write_text("task,fold\nx,1\n")
    assert_one_line_error(run_cli("util/report.py", str(save)), "results.csv", "test_top1")


def test_fold_figure(tmp_path):
    out = tmp_path / "fold3.png"
    proc = run_cli("util/draw_fold_figure.py", "--fold", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20000
    assert_one_line_error(run_cli("util/draw_fold_figure.py", "--fold", "9", "--out", str(out)),
                          "--fold 9")
    assert (Path(__file__).resolve().parent.parent / "util" / "fold.png").is_file()


def test_folded_is_compared_with_the_fastest_original(tmp_path):
    """eager: folded 1.5x its original; but compile runs the original 2x faster, so against
    the fastest original folding gains only 2600 / 2000 = 1.3x, and the report says so."""
    from util.reporting.data import best_vs_best, load_inference, summarize_inference
    lines = [INFER_HEADER]
    for backend, orig, folded, align in (("eager", 1000.0, 1500.0, 1), ("compile", 2000.0, 2400.0, 1),
                                         ("compile", 1900.0, 2600.0, 8)):
        lines += [f"lol/goldnumber-fraction,1,1024,Original,1,{orig},1e12,1,1,{backend},fp16,,{align},H100",
                  f"lol/goldnumber-fraction,1,1024,Folded,4,{folded},1e12,1,1,{backend},fp16,,{align},H100"]
    lines.append("lol/goldnumber-fraction,1,1024,Folded,2,2100,1e12,1,1,eager,fp16,,1,H100")  # not on compile
    results = tmp_path / "results.csv"
    results.write_text("\n".join(lines) + "\n")
    best = best_vs_best(summarize_inference(load_inference(results)))
    assert len(best) == 1
    row = best.iloc[0]
    assert (row["orig_config"], row["config"], row["Fold"]) == ("compile", "compile, align 8", 4)
    assert row["speedup"] == pytest.approx(1.3)

    save = make_savedir(tmp_path)
    proc = run_cli("util/report.py", str(save), "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    section = _section((save / "report.md").read_text(), "## 3. Inference throughput")
    line = _row(section.split("### Folded vs the fastest original", 1)[1], "`lol/goldnumber-fraction`")
    assert "| 2,000 | compile | 4 | 2,600 | compile, align 8 | 1.30 |" in line
    assert "* f = 4: 1.30–1.30 over the fastest original (1 model)." in section
    assert "roofline bound" not in section  # no Bandwidth column: no bound to show


def test_fastest_original_table_shows_the_roofline_bound(tmp_path):
    """With the GPU's bandwidth in the CSV, each speedup gets the roofline bound of the same two
    configurations; it equals ai.py's bound computed with the same peak and bandwidth."""
    import ai
    from util.reporting.data import best_vs_best, load_inference, summarize_inference
    peak, bw = 7.0e14, 3.0e12
    header = INFER_HEADER.replace("ChannelAlign,GPU", "ChannelAlign,PadInput,GPU,Bandwidth")
    lines = [header]
    for mode, fold, tput in (("Original", 1, 3.5e6), ("Folded", 4, 7.0e6)):
        flops = 1e13 * fold
        lines.append(f"noscope_coral,1,1024,{mode},{fold},{tput},{flops},1,1,triton,fp16,"
                     f"{flops / peak},8,1,H100,{bw}")
    results = tmp_path / "results.csv"
    results.write_text("\n".join(lines) + "\n")
    row = best_vs_best(summarize_inference(load_inference(results))).iloc[0]
    want = ai.roofline_rows(peak, bw, groups=("noscope",), folds=(4,), channel_align=8,
                            pad_input=True)[0]
    assert want["model"] == "noscope_coral"
    assert row["speedup"] == pytest.approx(2.0)
    assert row["bound"] == pytest.approx(want["bound_speedup_4"], rel=1e-6)
    save = make_savedir(tmp_path)
    proc = run_cli("util/report.py", str(save), "--results", str(results))
    assert proc.returncode == 0, proc.stderr
    section = _section((save / "report.md").read_text(), "## 3. Inference throughput")
    assert "| roofline bound |" in section and "**Roofline bound**" in section
    assert f"| 2.00 | {want['bound_speedup_4']:.2f} |" in section
