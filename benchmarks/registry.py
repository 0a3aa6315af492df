"""The model registry: a model is one file in benchmarks/models/ that registers itself.

    @register("my_model", kind="baseline", tasks=("annotation",),
              summary="one line", reference="Author et al. 2024", colour="#e6550d")
    class MyModel:
        def __init__(self, seed, context): ...
        def fit(self, train, val): ...      # train/val: CellData (cells) or PairData (cell line x drug)
        def predict(self, data): ...        # -> labels / values, one per row of data

What a model must do is typed below: `TrainedModel` (fit, predict) on a task that trains,
`ProbabilisticModel` (also predict_proba and classes_) where a classifier's probabilities
should rank for AUROC/AUPR, `ZeroShotEmbedder` (embed) on the zero-shot embedding task.
`register` checks the class against the protocols of the tasks it declares and refuses one
that lacks a method, naming its file.

A model that needs a CellLM names its pretraining with `pretraining=` ("pretrained",
an ablation of benchmarks.pretrainings, or "released", the authors' weights); the run
then gives it `context.checkpoint`, that pretraining's checkpoint folder, and
`context.embeddings` (its cached cell embeddings of the dataset), which the public helper
benchmarks.models.celllm_common.cell_embeddings reads.

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
import inspect
import math
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class TrainedModel(Protocol):
    """A model of a task that trains (annotation, drug sensitivity, drug response)."""

    def __init__(self, seed: int, context: ModelContext) -> None: ...

    def fit(self, train, val) -> None:
        """Train on `train` (CellData or PairData); `val` is for model selection only."""

    def predict(self, data):
        """One label (classification) or value (drug response) per row of `data`."""


@runtime_checkable
class ProbabilisticModel(TrainedModel, Protocol):
    """A classifier that also gives probabilities: the scoring of a binary task ranks by its positive class's."""

    classes_: list  # the classes, in the order of predict_proba's columns

    def predict_proba(self, data):
        """(rows of data, len(classes_)) probabilities."""


@runtime_checkable
class ZeroShotEmbedder(Protocol):
    """A model of the zero-shot embedding task: nothing is trained on the dataset."""

    def __init__(self, seed: int, context: ModelContext) -> None: ...

    def embed(self, data):
        """(cells of data, dimensions): one row per cell, in the order of data."""


def _protocol_methods(protocol) -> list[str]:
    """The methods a class must define to follow `protocol` (constructor aside: every class has one)."""
    names = {n for klass in protocol.__mro__ if klass not in (Protocol, object) and Protocol in klass.__mro__ for n in vars(klass)}
    return sorted(n for n in names if not n.startswith("_") and callable(getattr(protocol, n, None)))


def required_protocol(task: str):
    """The protocol a model of `task` follows: ZeroShotEmbedder where the task trains nothing, else TrainedModel."""
    from benchmarks.tasks import TASKS

    spec = TASKS.get(task)
    return ZeroShotEmbedder if spec is not None and not spec.needs_split else TrainedModel


def check_model_class(name: str, factory, tasks) -> None:
    """ValueError naming the model's file unless `factory` is a class with every method its tasks' protocols ask for."""
    where = inspect.getsourcefile(factory) if inspect.isclass(factory) or inspect.isfunction(factory) else None
    where = where or getattr(factory, "__module__", "?")
    if not inspect.isclass(factory):
        raise ValueError(f"{where}: model '{name}' must register a class (constructed with seed and context), not {factory!r}")
    for task in tasks:
        protocol = required_protocol(task)
        missing = [m for m in _protocol_methods(protocol) if not callable(getattr(factory, m, None))]
        if missing:
            raise ValueError(
                f"{where}: model '{name}' ({factory.__name__}) declares task '{task}' but has no {', '.join(missing)}: "
                f"a model of that task follows benchmarks.registry.{protocol.__name__}"
            )


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
        check_model_class(name, factory, tasks)
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


# Modules of benchmarks.models that are shared code for model files, public but not models
# (a private helper's name starts with "_" instead); discovery does not look for models in them.
HELPERS = ("celllm_common",)


def _is_model_file(name: str) -> bool:
    return not name.startswith("_") and name not in HELPERS


def discover() -> dict[str, ModelSpec]:
    """Import every model file of benchmarks.models (not its helpers) so that each registers itself."""
    import benchmarks.models as package

    for module in pkgutil.iter_modules(package.__path__):
        if _is_model_file(module.name):
            importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(_REGISTRY.items()))


def looks() -> dict[str, dict]:
    """Each registered model's kind and colour (None: its kind's next free shade), as plain values: what
    figures need of the registrations, handed to them so that drawing imports no model."""
    return {name: {"kind": spec.kind, "colour": spec.colour} for name, spec in discover().items()}


def models_for(task: str) -> list[str]:
    return [name for name, spec in discover().items() if spec.supports(task)]


def get(name: str) -> ModelSpec:
    """The spec of a registered model. A model in a file of its own name is found
    without importing every other model (a run job then pays only its own imports)."""
    if name not in _REGISTRY and name.isidentifier() and _is_model_file(name):
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
