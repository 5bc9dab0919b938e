"""The CSV of ``util/bandlimit_bench.py``: band-limited CNNs beside their originals and
FoldedCNNs. This module owns the columns; the benchmark writes rows and the report reads them
through it.

One row per (task, phase, variant): ``phase`` is ``inference`` (images/s of a forward at
``batch_images``, under the backend given) or ``train`` (one SGD step: forward, backward,
update); ``variant`` is ``original`` (``fold`` 1), ``folded`` (``fold`` > 1) or ``band``
(``band_limit``% of each conv's spectrum discarded, ``algorithm`` fft or dft, ``kept_fraction``
of the coefficients actually kept). ``peak_mem_mb`` is the CUDA allocator's peak during the
timed steps (weights, inputs, activations, workspaces, optimizer state); empty on CPU.
``flops_per_image`` is what the model executes (``models/costs.py``), ``direct_flops_per_image``
the same network with direct convolutions. A failed or skipped configuration has ``error``.

Rows are written and read through ``TABLE`` (``util/bench/results.py``): ``TABLE.append(path,
[row])``, ``TABLE.read_rows(path)`` (numbers parsed, empty cells None).
"""
from __future__ import annotations


from util.bench.results import Column, CsvTable

_INT = ("fold", "channel_align", "pad_input", "batch_images", "trials")
_FLOAT = ("band_limit", "kept_fraction", "images_per_sec", "ms_per_batch", "peak_mem_mb",
          "flops_per_image", "direct_flops_per_image")
_NAMES = ["task", "paper_id", "phase", "variant", "fold", "band_limit", "algorithm",
          "kept_fraction", "backend", "precision", "channel_align", "pad_input", "batch_images",
          "images_per_sec", "ms_per_batch", "peak_mem_mb", "flops_per_image",
          "direct_flops_per_image", "trials", "gpu", "torch", "error"]
TABLE = CsvTable(tuple(Column(n, "int") if n in _INT else Column(n, "float", ".6g") if n in _FLOAT
                       else Column(n) for n in _NAMES),
                 producer="util/bandlimit_bench.py")
COLUMNS = TABLE.names
PHASES = ("inference", "train")
VARIANTS = ("original", "folded", "band")

