"""What every config dataclass shares: typed, bounded fields; a plain dict out; a dict in that names unknown keys.

A field declared with `option(default, low=..., high=..., choices=...)` is
checked when the dataclass is made: its value must have the annotated type
(int, float, bool or str; an int is a fine float, a bool is never a number)
and lie within its bounds. So a config file with `dim: "64"`, `target_sum: -1`
or `max_steps: -3` fails with one message naming the option, whichever way it
was read (a YAML file, a checkpoint's config.json, a command-line flag).
"""

from __future__ import annotations

import math
from dataclasses import asdict, field, fields

import numpy as np

_KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def option(default, *, low=None, high=None, low_open: bool = False, high_open: bool = False, choices=None):
    """A dataclass field with bounds: numbers in [low, high] (an open end excludes it), strings among `choices`."""
    return field(default=default, metadata={"low": low, "high": high, "low_open": low_open, "high_open": high_open, "choices": choices})


def _typed(label: str, name: str, kind: str, value):
    """`value` as the annotated kind, or ValueError naming the option."""
    wrong = ValueError(f"{label} '{name}' must be {_KINDS[kind]}, not {value!r}")
    if kind == "bool":
        if not isinstance(value, (bool, np.bool_)):
            raise wrong
        return bool(value)
    if kind == "str":
        if not isinstance(value, str):
            raise wrong
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise wrong
    if not math.isfinite(value):
        raise ValueError(f"{label} '{name}' must be finite, not {value!r}")
    if kind == "int":
        if float(value) != int(value):
            raise wrong
        return int(value)
    return float(value)


def _bounded(label: str, name: str, value, bounds: dict) -> None:
    low, high = bounds.get("low"), bounds.get("high")
    if low is not None and (value < low or (bounds.get("low_open") and value == low)):
        raise ValueError(f"{label} '{name}' must be {'>' if bounds.get('low_open') else '>='} {low}, not {value!r}")
    if high is not None and (value > high or (bounds.get("high_open") and value == high)):
        raise ValueError(f"{label} '{name}' must be {'<' if bounds.get('high_open') else '<='} {high}, not {value!r}")
    choices = bounds.get("choices")
    if choices is not None and value not in choices:
        raise ValueError(f"{label} '{name}' must be one of {', '.join(map(str, choices))}, not {value!r}")


class Options:
    """Mixin for frozen dataclasses of options: fields checked on creation, then `validate` for cross-field rules."""

    label = "option"  # how error messages name this kind of option

    def __post_init__(self):
        for f in fields(self):
            kind = f.type if isinstance(f.type, str) else f.type.__name__
            value = getattr(self, f.name)
            if kind in _KINDS:
                value = _typed(self.label, f.name, kind, value)
                object.__setattr__(self, f.name, value)
            _bounded(self.label, f.name, value, f.metadata)
        self.validate()

    def validate(self) -> None:
        """Rules that tie several fields together (none by default)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        if not isinstance(values, dict):
            raise ValueError(f"{cls.label}s must be a mapping of names to values, not {values!r}")
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.label}(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**values)
