"""CellLM pretraining: views, objectives, the divide-and-conquer step and the trainer."""
