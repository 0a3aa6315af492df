"""CellLM: an open reproduction of the single-cell foundation model trained with
divide-and-conquer contrastive learning (Zhao, Zhang & Nie, arXiv 2306.04371)."""

__version__ = "0.1.0"
