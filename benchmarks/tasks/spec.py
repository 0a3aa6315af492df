"""What a task is: its kind, target, settings (how its splits are drawn) and headline metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    """How one setting of a task splits its data.

    `unit` is what is drawn into train/val/test: single cells, (cell line, drug)
    pairs, whole cell lines (cold start) or whole drugs. `train=None` trains on
    everything that is not val or test; a fraction trains on that share only
    (few-shot), and the rest is marked unused. With `stratify`, every class
    is split by the same fractions.
    """

    val: float
    test: float
    train: float | None = None
    unit: str = "cell"
    stratify: bool = True

    def with_fractions(self, fractions: dict) -> "Setting":
        """This setting re-sized: each of train, val, test in (0, 1), their sum at most 1
        (below 1 with `train` given, the rest is left unused, as few-shot does)."""
        unknown = set(fractions) - {"train", "val", "test"}
        if unknown:
            raise ValueError(f"unknown split fraction(s) {', '.join(sorted(unknown))} (expected train, val, test)")
        resized = Setting(fractions.get("val", self.val), fractions.get("test", self.test), fractions.get("train", self.train), self.unit, self.stratify)
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
    name: str
    kind: str  # "classification": one label per cell; "regression": ln IC50 per (cell line, drug)
    target: str  # .obs column (classification) or response-table column (regression)
    settings: dict[str, Setting]
    headline: list[str]  # metrics shown in the Markdown tables
    positive: str | None = None  # the positive class of a binary task (F1, AUROC, AUPR)
    summary: str = ""


ANNOTATION = Task(
    "annotation", "classification", "cell_type",
    settings={"standard": Setting(val=0.1, test=0.2)},
    headline=["accuracy", "macro_f1"],
    summary="cell type annotation (Zheng68k, Baron)",
)
DRUG_SENSITIVITY = Task(
    "drug_sensitivity", "classification", "response",
    # the paper: full = 80% of the cells train, few-shot = 5%; both are tested on the same cells
    settings={"full": Setting(val=0.1, test=0.1), "few_shot": Setting(val=0.05, test=0.1, train=0.05)},
    headline=["f1", "auroc", "aupr", "accuracy"],
    positive="sensitive",
    summary="single-cell drug sensitivity (GSE149383 erlotinib, GSE117872 cisplatin)",
)
DRUG_RESPONSE = Task(
    "drug_response", "regression", "ln_ic50",
    settings={
        "warm": Setting(val=0.1, test=0.1, unit="pair", stratify=False),
        "cold_cell": Setting(val=0.1, test=0.1, unit="cell_line", stratify=False),
        # beyond the paper; a larger test share, since drug panels are small
        "cold_drug": Setting(val=0.15, test=0.2, unit="drug", stratify=False),
    },
    headline=["rmse", "pearson", "spearman", "per_drug_pearson", "r2"],
    summary="cell-line drug response, ln IC50 (GDSC, CCLE)",
)
TASKS = {task.name: task for task in (ANNOTATION, DRUG_SENSITIVITY, DRUG_RESPONSE)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}' (known: {', '.join(TASKS)})")
    return TASKS[name]


def task_setting(name: str, setting: str, fractions: dict | None = None) -> Setting:
    """One setting of a task, re-sized by its configured split fractions ({val:, test:, train:})."""
    task = get_task(name)
    if setting not in task.settings:
        raise ValueError(f"task '{name}': unknown setting '{setting}' (known: {', '.join(task.settings)})")
    return task.settings[setting].with_fractions(fractions or {})


def task_settings(name: str, config: dict | None = None) -> dict[str, Setting]:
    """The task's settings, restricted and re-sized by its config (`settings: {name: {val:, test:, train:}}`)."""
    task = get_task(name)
    chosen = (config or {}).get("settings") or {s: {} for s in task.settings}
    unknown = set(chosen) - set(task.settings)
    if unknown:
        raise ValueError(f"task '{name}': unknown setting(s) {', '.join(sorted(unknown))} (known: {', '.join(task.settings)})")
    return {s: task_setting(name, s, chosen[s]) for s in chosen}
