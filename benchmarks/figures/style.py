"""One look for every figure: seaborn's paper context, PNG and PDF side by side, and the labels every figure writes."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from celllm.outputs import atomic_path  # noqa: E402

TICK_SIZE = 8  # model names; >= 7 pt at print size
NOTE_SIZE = 7


def setup() -> None:
    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save(figure, png_path) -> None:
    """Write `png_path` and the PDF beside it, atomically."""
    png_path = Path(png_path)
    for path in (png_path, png_path.with_suffix(".pdf")):
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=path.suffix[1:], dpi=200, bbox_inches="tight")
    plt.close(figure)


def as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return bool(value) if not pd.isna(value) else False


def dataset_label(dataset: str, simulated: bool) -> str:
    return f"{dataset} ({'simulated' if simulated else 'real data'})"


def wrap_label(text: str, width: int = 22) -> str:
    """Wrap at spaces and after '/', never inside a word: long names stay on a few short lines."""
    pieces = [p for p in re.split(r"(?<=/)|\s+", str(text)) if p]
    lines, line = [], ""
    for piece in pieces:
        sep = "" if line.endswith("/") or not line else " "
        if line and len(line) + len(sep) + len(piece) > width:
            lines.append(line)
            line = piece
        else:
            line += sep + piece
    lines.append(line)
    return "\n".join(lines)
