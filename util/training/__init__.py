"""Training orchestration: the run folder layout and results, and the pool of concurrent runs."""
