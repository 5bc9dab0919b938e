"""The inference benchmark: backends and kernels, timing, FLOPs, peak and roofline, the results CSV."""
