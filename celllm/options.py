"""What every config dataclass shares: a plain dict out, and a dict in that names unknown keys."""

from __future__ import annotations

from dataclasses import asdict, fields


class Options:
    """Mixin for frozen dataclasses of options."""

    label = "option"  # how error messages name this kind of option

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict):
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown {cls.label}(s): {', '.join(sorted(unknown))}")
        return cls(**values)
