"""The model registry: a model is one file in benchmarks/models/ that registers itself.

    @register("my_model", kind="baseline", tasks=("annotation",),
              summary="one line", reference="Author et al. 2024")
    class MyModel:
        def __init__(self, seed, context): ...
        def fit(self, train, val): ...      # train/val: CellData (cells) or PairData (cell line x drug)
        def predict(self, data): ...        # -> labels / values, one per row of data
        def predict_proba(self, data): ...  # optional (classification): (n, len(self.classes_)) probabilities

A model that needs a CellLM checkpoint names the pretraining it wants with
`checkpoint=` ("pretrained", or an ablation of benchmarks.ablations); the run
then gives it `context.checkpoint` and `context.embeddings` (that checkpoint's
cached [CLS] embeddings of the dataset, see benchmarks.models._celllm).

Everything else (the DAG, the tables, the tests) discovers models from here.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.ablations import PRETRAININGS

KINDS = ("celllm", "baseline", "control")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    tasks: tuple[str, ...]
    summary: str
    reference: str
    checkpoint: str | None  # the pretraining variant it needs, or None
    factory: type = field(compare=False, repr=False)

    @property
    def needs_checkpoint(self) -> bool:
        return self.checkpoint is not None


@dataclass(frozen=True)
class ModelContext:
    """What a run gives a model besides data: its CellLM checkpoint and cached embeddings, threads, device and options."""

    checkpoint: Path | None = None
    embeddings: Path | None = None  # .h5ad whose .obsm["X_celllm"] holds the checkpoint's embeddings of the dataset
    threads: int = 1
    device: str = "cpu"
    options: dict = field(default_factory=dict)  # the model's options from the task config (e.g. epochs, lr)


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, *, kind: str, tasks, summary: str, reference: str = "", checkpoint: str | None = None):
    if kind not in KINDS:
        raise ValueError(f"model '{name}': kind must be one of {', '.join(KINDS)}, not '{kind}'")
    if checkpoint is not None and checkpoint not in PRETRAININGS:
        raise ValueError(f"model '{name}': checkpoint must be one of {', '.join(PRETRAININGS)}, not '{checkpoint}'")

    def decorate(factory):
        existing = _REGISTRY.get(name)
        if existing is not None and existing.factory.__module__ != factory.__module__:
            raise ValueError(f"model name '{name}' is registered twice ({existing.factory.__module__}, {factory.__module__})")
        _REGISTRY[name] = ModelSpec(name, kind, tuple(tasks), summary, reference, checkpoint, factory)
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
    """The spec of a registered model. A model in a file of its own name is found
    without importing every other model (a run job then pays only its own imports)."""
    if name not in _REGISTRY and name.isidentifier():
        try:
            importlib.import_module(f"benchmarks.models.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.models.{name}":
                raise
    if name in _REGISTRY:
        return _REGISTRY[name]
    models = discover()
    if name not in models:
        raise KeyError(f"unknown model '{name}' (registered: {', '.join(models)})")
    return models[name]
