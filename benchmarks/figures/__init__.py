"""Figures drawn from result files alone (tables, logs), never by running a model."""

import json
from pathlib import Path

import pandas as pd

from celllm.errors import InputError


def read_json_object(path) -> dict:
    """A JSON object from a result file (run record, perf record), or a one-line error naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable JSON file ({exc})") from None
    if not isinstance(record, dict):
        raise InputError(f"{path}: expected a JSON object")
    return record


def read_csv_file(path, what: str = "file") -> pd.DataFrame:
    """A CSV result file (table, predictions), or a one-line error naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        return pd.read_csv(path)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: not a readable CSV {what} ({type(exc).__name__}: {exc})") from None
