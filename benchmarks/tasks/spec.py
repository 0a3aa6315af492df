"""What a task is: the contract every task file of benchmarks/tasks/ fills in.

A task says which files of a dataset it reads (by role: `data`, `response`,
`drugs`; the workflow owns their paths), what a setting draws into train /
validation / test, what a model sees of each part, what a model run writes, how its files are scored,
and how its table is drawn. The runner (benchmarks/runner.py) and the rules
ask the task instead of branching on its name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

NO_SPLIT = "none"


@dataclass(frozen=True)
class Setting:
    """How one setting of a task splits its data.

    `unit` is what is drawn into train/val/test: single cells, (cell line, drug)
    pairs, whole cell lines (cold start) or whole drugs; "none" for a task that
    trains nothing (zero-shot), which has no split file. `train=None` trains on
    everything that is not val or test; a fraction trains on that share only
    (few-shot), and the rest is marked unused. With `stratify`, every class
    is split by the same fractions. `label` names the setting in figures.
    """

    val: float
    test: float
    train: float | None = None
    unit: str = "cell"
    stratify: bool = True
    label: str = ""

    def with_fractions(self, fractions: dict) -> Setting:
        """This setting re-sized: each of train, val, test in (0, 1), their sum at most 1
        (below 1 with `train` given, the rest is left unused, as few-shot does)."""
        unknown = set(fractions) - {"train", "val", "test"}
        if self.unit == NO_SPLIT:
            if fractions:
                raise ValueError("this setting trains nothing and has no split fractions")
            return self
        if unknown:
            raise ValueError(f"unknown split fraction(s) {', '.join(sorted(unknown))} (expected train, val, test)")
        resized = Setting(
            fractions.get("val", self.val),
            fractions.get("test", self.test),
            fractions.get("train", self.train),
            self.unit,
            self.stratify,
            self.label,
        )
        parts = {"train": resized.train, "val": resized.val, "test": resized.test}
        for name, value in parts.items():
            if value is not None and not 0 < value < 1:
                raise ValueError(f"split fraction {name} must be between 0 and 1, not {value}")
        total = sum(v for v in parts.values() if v is not None)
        if total > 1 + 1e-9 or (resized.train is None and total >= 1):
            given = ", ".join(f"{k} {v}" for k, v in parts.items() if v is not None)
            limit = "at most 1" if resized.train is not None else "below 1, to leave cells to train on"
            raise ValueError(f"split fractions {given} sum to {total:g}; they must sum to {limit}")
        return resized


@dataclass(frozen=True)
class Task:
    """One task. Subclasses (a kind of task: cells.CellClassification, drug_response.DrugResponse)
    implement the data and scoring methods; a task file makes one instance, `TASK`."""

    name: str
    target: str  # .obs column (cells) or response-table column (pairs) that models predict
    settings: dict[str, Setting]
    headline: list[str]  # metrics of the Markdown tables; the first ranks the models
    figure_metrics: list[str]  # metrics of the task's bar figure
    title: str  # of the task's bar figure
    summary: str = ""
    positive: str | None = None  # the positive class of a binary task (F1, AUROC, AUPR)
    settings_side_by_side: bool = False  # bar figure: settings as hatched bars in one panel, not a row each
    figures: tuple[
        str, ...
    ] = ()  # its detail figures: "confusion" (focus model), "umap" (every model), "scatter", "geometry" (the embedding metrics of benchmarks.embedding_geometry, every model)
    # further Markdown tables under the headline one: (title, metrics) each; the CSV has every metric
    detail_tables: tuple[tuple[str, tuple[str, ...]], ...] = ()
    summary_metrics: tuple[str, ...] = ()  # what results/summary.md shows of the task (default: 2 headline metrics)
    models_of: str | None = None  # a variant of that task: its registered models run on this one too
    split_inputs: tuple[str, ...] = ("data",)  # file roles a split reads
    run_inputs: tuple[str, ...] = ("data",)  # file roles a model run reads
    arrays: tuple[str, ...] = ()  # arrays a model run leaves beside its predictions (embedding -> embedding.npy)
    parts: tuple[str, ...] = field(default=("train", "val", "test"), repr=False)

    @property
    def needs_split(self) -> bool:
        return any(setting.unit != NO_SPLIT for setting in self.settings.values())

    @property
    def model_task(self) -> str:
        """The task name models register for to run on this task."""
        return self.models_of or self.name

    # ---- the contract of a task kind
    def split_items(self, files: dict) -> tuple:
        """(ids, units by setting.unit, strata or None) of the rows a split assigns; `files`: role -> path."""
        raise NotImplementedError

    def load_parts(self, files: dict, split) -> dict:
        """What a model sees of each part ('train', 'val', 'test') under `split` (one entry per id)."""
        raise NotImplementedError

    def predictions(self, model, test) -> pd.DataFrame:
        """The predictions table of a fitted `model` on `test`: ids, truth, and what scoring reads
        (benchmarks.records: written by the run, read back exactly by scoring)."""
        raise NotImplementedError

    def run(self, model, parts: dict, seed: int) -> tuple[pd.DataFrame, dict]:
        """(predictions table, arrays by name) of `model` on the parts: fit on train (validation for
        model selection), predict test. A zero-shot task overrides this. Nothing here scores."""
        model.fit(parts["train"], parts["val"])
        return self.predictions(model, parts["test"]), {}

    @property
    def numeric_columns(self) -> tuple[str, ...]:
        """The columns of its predictions table that hold numbers (the rest are read back as text)."""
        return ()

    def score(self, predictions: pd.DataFrame, arrays: dict, seed: int) -> tuple[dict, dict]:
        """(metrics, extra record fields) of one run, from its predictions table and arrays alone."""
        raise NotImplementedError

    def is_simulated(self, parts: dict) -> bool:
        raise NotImplementedError

    @staticmethod
    def dataset(files: dict) -> str:
        return Path(files["data"]).stem
