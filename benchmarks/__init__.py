"""The benchmark suite: tasks, a registry of models (CellLM, baselines, controls), splits, run records and tables."""
