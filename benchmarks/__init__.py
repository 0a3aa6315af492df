"""The benchmark suite: tasks, a registry of models (CellLM, baselines, controls), protocol and tables."""
