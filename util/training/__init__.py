"""The training library behind train.py and fold_trainer.py: a run's settings (run_config), its
folder and files (layout), checkpoints (checkpoint), the training step (step), evaluation
(evaluate), the pool of concurrent runs (run_pool), and the measured throughput of concurrent runs
(throughput) with what the paper's accuracy table costs at it (projection)."""
