"""The model registry: a model is one file in benchmarks/models/ that registers itself.

    @register("my_model", kind="baseline", tasks=("annotation",),
              summary="one line", reference="Author et al. 2024")
    class MyModel:
        def __init__(self, seed, context): ...
        def fit(self, train, val): ...      # train/val: TaskData
        def predict(self, data): ...        # -> labels / values, one per row of data

Everything else (the DAG, the tables, the tests) discovers models from here.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

KINDS = ("celllm", "baseline", "control")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    tasks: tuple[str, ...]
    summary: str
    reference: str
    needs_checkpoint: bool
    factory: type = field(compare=False, repr=False)


@dataclass(frozen=True)
class ModelContext:
    """What a run gives a model besides data: its CellLM checkpoint, threads and device."""

    checkpoint: Path | None = None
    threads: int = 1
    device: str = "cpu"


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, kind: str, tasks, summary: str, reference: str = "", needs_checkpoint: bool = False):
    if kind not in KINDS:
        raise ValueError(f"model '{name}': kind must be one of {', '.join(KINDS)}, not '{kind}'")

    def decorate(factory):
        existing = _REGISTRY.get(name)
        if existing is not None and existing.factory.__module__ != factory.__module__:
            raise ValueError(f"model name '{name}' is registered twice ({existing.factory.__module__}, {factory.__module__})")
        _REGISTRY[name] = ModelSpec(name, kind, tuple(tasks), summary, reference, needs_checkpoint, factory)
        return factory

    return decorate


def discover() -> dict[str, ModelSpec]:
    """Import every module of benchmarks.models so that each registers itself."""
    import benchmarks.models as package

    for module in pkgutil.iter_modules(package.__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(_REGISTRY.items()))


def models_for(task: str) -> list[str]:
    return [name for name, spec in discover().items() if task in spec.tasks]


def get(name: str) -> ModelSpec:
    models = discover()
    if name not in models:
        raise KeyError(f"unknown model '{name}' (registered: {', '.join(models)})")
    return models[name]
