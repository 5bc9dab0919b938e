"""Accelerator evaluation with ZigZag (KU Leuven's mapping and cost-model framework).

Why: the paper argues about GPUs only; this package asks whether folding also pays on spatial
accelerators that are not GPUs (Eyeriss-like, TPU-like), and how it compares with keeping
activations on chip between layers (ZigZag's inter-layer data locality, i.e. fusion at the
memory level). Nothing here simulates hardware itself: ZigZag does, with its shipped
accelerator and mapping descriptions.

Modules: ``hardware`` (the shipped accelerators), ``network`` (registry network -> ONNX at a
fair batch, MAC counts), ``band_export`` (band-limited convs in a form ZigZag costs),
``evaluate`` (ZigZag per layer, cached on disk, in parallel), ``table`` (rows, per-image figures, ratios, CSV), ``report`` (Markdown and plots),
``relu_density`` (share of pre-ReLU outputs <= 0 and the work a zero-skipping accelerator saves).
"""
