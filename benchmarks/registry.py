"""The model registry: a model is one file in benchmarks/models/ that registers itself.

    @register("my_model", kind="baseline", tasks=("annotation",),
              summary="one line", reference="Author et al. 2024", colour="#e6550d")
    class MyModel:
        def __init__(self, seed, context): ...
        def fit(self, train, val): ...      # train/val: CellData (cells) or PairData (cell line x drug)
        def predict(self, data): ...        # -> labels / values, one per row of data
        def predict_proba(self, data): ...  # optional (classification): (n, len(self.classes_)) probabilities
        def embed(self, data): ...          # zero-shot embedding task instead of fit/predict: (n_cells, dims)

A model that needs a CellLM names its pretraining with `pretraining=` ("pretrained",
an ablation of benchmarks.pretrainings, or "released", the authors' weights); the run
then gives it `context.checkpoint`, that pretraining's checkpoint folder, and
`context.embeddings` (its cached [CLS] embeddings of the dataset, see
benchmarks.models._celllm).

A model that reads the gene interaction network (the table the `ppi` stage reads, columns
gene_a, gene_b, score) says `needs_network=True` and finds its path in `context.network`.

A model that takes options declares them with their defaults, `options={"epochs": 20,
"lr": 1e-4}` (on the tasks of `option_tasks`, default all its tasks); a default's type is
the option's type and numbers must be positive. The task config's
`options: {model: {...}}` is checked against that before any job runs
(`ModelSpec.resolve_options`), and the run gives the model the defaults with the
configured values over them in `context.options`.

Everything else (the DAG, the tables, the tests) discovers models from here.
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.pretrainings import PRETRAININGS
from celllm.errors import InputError

KINDS = ("celllm", "baseline", "control")


@dataclass(frozen=True)
class ModelSpec:
    name: str
    kind: str
    tasks: tuple[str, ...]
    summary: str
    reference: str
    pretraining: str | None  # the CellLM pretraining it needs (benchmarks.pretrainings), or None
    factory: type = field(compare=False, repr=False)
    options: dict = field(default_factory=dict)  # option -> default
    option_tasks: tuple[str, ...] = ()  # the tasks its options apply to
    colour: str | None = None  # its colour in every figure; None: the next free shade of its kind's family
    needs_network: bool = False  # whether it reads the configured gene interaction network (context.network)

    @property
    def needs_checkpoint(self) -> bool:
        return self.pretraining is not None

    def supports(self, task: str) -> bool:
        """Whether the model runs on `task`: it registered for it, or for the task it is a variant of."""
        from benchmarks.tasks import get_task

        return get_task(task).model_task in self.tasks

    def resolve_options(self, task: str, given: dict | None) -> dict:
        """The options the model runs with on `task`: its defaults, with the configured `given` over them."""
        from benchmarks.tasks import get_task

        given = dict(given or {})
        if get_task(task).model_task not in self.option_tasks:
            if given:
                raise InputError(f"model '{self.name}' takes no options on task '{task}' (given: {', '.join(map(str, given))})")
            return {}
        return check_options(f"model '{self.name}'", self.options, given)


@dataclass(frozen=True)
class ModelContext:
    """What a run gives a model besides data: its CellLM checkpoint and cached embeddings, threads, device and options."""

    checkpoint: Path | None = None
    embeddings: Path | None = None  # .h5ad whose .obsm["X_celllm"] holds the checkpoint's embeddings of the dataset
    network: Path | None = None  # the configured interaction network (gene_a, gene_b, score), for a model that needs it
    threads: int = 1
    device: str = "cpu"
    options: dict = field(default_factory=dict)  # the model's options from the task config (e.g. epochs, lr)


_REGISTRY: dict[str, ModelSpec] = {}


def check_options(model: str, defaults: dict, given: dict) -> dict:
    """`defaults` with `given` over them; InputError for an unknown option or a value of the wrong type
    (numbers must be positive and finite). `model` names the model in messages ("model 'mlp'")."""
    unknown = sorted(set(map(str, given)) - set(defaults))
    if unknown:
        raise InputError(f"unknown option '{unknown[0]}' for {model} (known: {', '.join(defaults) or 'none'})")
    for name, value in given.items():
        default = defaults[name]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            kind = (int, float) if isinstance(default, float) else int
            # finite too: YAML's .inf is a float, and `lr: .inf` trained a model to NaN that still scored the majority class
            ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        else:
            ok = isinstance(value, type(default))
        if not ok:
            what = {bool: "true or false", int: "positive integer", float: "positive number"}.get(type(default), type(default).__name__)
            raise InputError(f"option '{name}' must be a {what} for {model}, got {value!r}")
    return {**defaults, **given}


def register(
    name: str,
    *,
    kind: str,
    tasks,
    summary: str,
    reference: str = "",
    pretraining: str | None = None,
    options: dict | None = None,
    option_tasks=None,
    colour: str | None = None,
    needs_network: bool = False,
):
    if kind not in KINDS:
        raise ValueError(f"model '{name}': kind must be one of {', '.join(KINDS)}, not '{kind}'")
    if pretraining is not None and pretraining not in PRETRAININGS:
        raise ValueError(f"model '{name}': pretraining must be one of {', '.join(PRETRAININGS)}, not '{pretraining}'")

    def decorate(factory):
        existing = _REGISTRY.get(name)
        if existing is not None and existing.factory.__module__ != factory.__module__:
            raise ValueError(f"model name '{name}' is registered twice ({existing.factory.__module__}, {factory.__module__})")
        _REGISTRY[name] = ModelSpec(
            name,
            kind,
            tuple(tasks),
            summary,
            reference,
            pretraining,
            factory,
            dict(options or {}),
            tuple(option_tasks if option_tasks is not None else tasks) if options else (),
            colour,
            needs_network,
        )
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
    return [name for name, spec in discover().items() if spec.supports(task)]


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
