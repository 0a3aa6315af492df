"""One look for every figure: seaborn's paper context, PNG and PDF side by side."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

from celllm.io import atomic_path  # noqa: E402


def setup() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save(figure, png_path) -> None:
    """Write `png_path` and the PDF beside it, atomically."""
    png_path = Path(png_path)
    for path in (png_path, png_path.with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=path.suffix[1:], dpi=200, bbox_inches="tight")
    plt.close(figure)
