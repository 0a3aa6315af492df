"""The data ledger: what each parse of a real dataset kept and lost, step by step, and why.

A parser records one row per step (reading, a filter, the gene-symbol mapping, each
join, censoring, truncation): what the step counts (cells, genes, cell lines, drugs,
pairs, ...), how many entered, how many it kept, how many it kept but changed
(renamed, averaged, censored, cut), why the rest were lost, and the names of the
lost ones. The parse writes the table beside the dataset
(`results/data/{dataset}.ledger.tsv`) and to its log, and `LossPolicy.check` stops it
when a step loses more of its drugs, cell lines, pairs or cells than the config
allows (`data.max_loss`, default 1%), unless the config accepts that loss for that
step with a stated reason (`data.accept.{dataset}.{step}`).

Step names have one owner, `STEPS` below, so a config that accepts a loss at a
misspelt step is refused before any job runs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from celllm.errors import InputError
from celllm.outputs import atomic_path

log = logging.getLogger(__name__)

# Every step a parser may record, and what it does. A step of the same name means the
# same thing in every dataset's ledger.
STEPS: dict[str, str] = {
    "read": "rows of the source file(s) read",
    "labels": "cells matched to their label or cell-information row",
    "selection": "cells chosen by the dataset's documented selection rule",
    "empty": "cells or profiles without any expression",
    "symbols": "genes mapped to today's HGNC symbols (unmappable Ensembl ids dropped, duplicates summed)",
    "default_profile": "omics profiles (expression, copy number, mutations) that are their model's default entry (one per model)",
    "model_name": "expression profiles whose DepMap model is named in Model.csv",
    "duplicates": "repeated measurements of one (cell line, drug) pair averaged into one",
    "censoring": "IC50 values at the assay's limits, kept as censored values",
    "drug_structure": "drugs matched to a structure: compound list by name or synonym, then PubChem by name",
    "cell_line_model": "cell lines of the response table matched to a model of the expression source",
    "cell_line_expression": "cell lines of the response table that have an expression profile",
    "unscreened": "expression profiles of cell lines without any measured pair, left out",
    "cell_line_omics": "TGSA's genes found in DepMap's mutation and copy-number matrices, the cell lines with both profiles "
    "(a line without one keeps a NaN row), damaging-mutation calls binarised",
    "proteins": "proteins named by a gene symbol",
    "links": "interactions between two proteins of the info file",
    "truncation": "cells with more expressed genes than the model reads (kept, cut at tokenization)",
}
CHECKED_UNITS = ("cells", "cell_lines", "drugs", "pairs")  # what a loss threshold applies to
COLUMNS = ["dataset", "step", "unit", "entered", "kept", "lost", "lost_percent", "changed", "expected", "detail", "lost_names"]
NAMES_LISTED = 500  # lost names a ledger row lists (every lost drug and cell line); beyond that they are counted
NAMES_IN_ERROR = 10  # and the one-line error of a loss above the threshold


@dataclass
class Step:
    step: str
    unit: str
    entered: int
    kept: int
    detail: str = ""
    lost_names: tuple[str, ...] = ()
    changed: int = 0
    expected: bool = False  # a documented, deliberate filter: shown, never held to the threshold

    @property
    def lost(self) -> int:
        return self.entered - self.kept

    @property
    def lost_fraction(self) -> float:
        return self.lost / self.entered if self.entered else 0.0

    def names_text(self, limit: int = NAMES_LISTED) -> str:
        names = sorted(map(str, self.lost_names))
        text = "; ".join(names[:limit])
        return text + (f"; ... {len(names) - limit} more" if len(names) > limit else "")


@dataclass
class Ledger:
    """The steps of one dataset's parse, in order."""

    dataset: str
    steps: list[Step] = field(default_factory=list)

    def record(
        self, step: str, unit: str, entered: int, kept: int, detail: str = "", lost: Iterable = (), changed: int = 0, expected: bool = False
    ) -> Step:
        """Add a step (and log it). `lost`: the names of what was lost, where they are known."""
        if step not in STEPS:
            raise ValueError(f"unknown ledger step '{step}' (known: {', '.join(STEPS)})")
        if not 0 <= kept <= entered:
            raise ValueError(f"ledger step '{step}': kept {kept} of {entered}")
        row = Step(step, unit, int(entered), int(kept), detail, tuple(dict.fromkeys(map(str, lost))), int(changed), expected)
        self.steps.append(row)
        log.info(
            "%s: %s: %d of %d %s kept%s%s",
            self.dataset,
            step,
            row.kept,
            row.entered,
            unit,
            f" ({row.lost} lost)" if row.lost else "",
            f"; {detail}" if detail else "",
        )
        return row

    def frame(self) -> pd.DataFrame:
        rows = [
            {
                "dataset": self.dataset,
                "step": s.step,
                "unit": s.unit,
                "entered": s.entered,
                "kept": s.kept,
                "lost": s.lost,
                "lost_percent": round(100 * s.lost_fraction, 3),
                "changed": s.changed,
                "expected": "yes" if s.expected else "no",
                "detail": s.detail,
                "lost_names": s.names_text(),
            }
            for s in self.steps
        ]
        return pd.DataFrame(rows, columns=COLUMNS)

    def to_text(self) -> str:
        return self.frame().to_csv(sep="\t", index=False)

    def log(self) -> None:
        log.info("%s: data ledger\n%s", self.dataset, self.to_text())

    def save(self, path) -> None:
        """The ledger as a TSV at `path`, written atomically."""
        with atomic_path(path) as tmp:
            Path(tmp).write_text(self.to_text())


@dataclass(frozen=True)
class Accepted:
    max_loss: float
    reason: str


@dataclass(frozen=True)
class LossPolicy:
    """How much a step may lose before the parse stops: `max_loss` (a fraction) for every step,
    or what the config accepts for a named step of a dataset, with its reason."""

    max_loss: float = 0.01
    accepted: Mapping[str, Mapping[str, Accepted]] = field(default_factory=dict)  # dataset -> step -> Accepted

    @classmethod
    def from_config(cls, data: Mapping | None, where: str = "config: data") -> LossPolicy:
        """From the workflow config's `data` section ({max_loss, accept: {dataset: {step: {max_loss, reason}}}})."""
        data = dict(data or {})
        unknown = sorted(set(data) - {"max_loss", "accept"})
        if unknown:
            raise InputError(f"{where}: unknown key '{unknown[0]}' (known: max_loss, accept)")
        max_loss = _fraction(data.get("max_loss", 0.01), f"{where}.max_loss")
        accepted: dict[str, dict[str, Accepted]] = {}
        for dataset, steps in (data.get("accept") or {}).items():
            for step, entry in (steps or {}).items():
                here = f"{where}.accept.{dataset}.{step}"
                if step not in STEPS:
                    raise InputError(f"{here}: unknown step '{step}' (steps: {', '.join(STEPS)})")
                if not isinstance(entry, Mapping) or set(entry) != {"max_loss", "reason"}:
                    raise InputError(f"{here}: give exactly max_loss (a fraction) and reason (why this loss is acceptable)")
                reason = str(entry["reason"]).strip()
                if not reason:
                    raise InputError(f"{here}.reason: say why this loss is acceptable")
                accepted.setdefault(str(dataset), {})[step] = Accepted(_fraction(entry["max_loss"], f"{here}.max_loss"), reason)
        return cls(max_loss, accepted)

    def allowed(self, dataset: str, step: str) -> float:
        entry = self.accepted.get(dataset, {}).get(step)
        return entry.max_loss if entry else self.max_loss

    def check(self, ledger: Ledger) -> None:
        """InputError, in one line naming the dataset, the step and the count, for the first step that loses
        more of its drugs, cell lines, pairs or cells than allowed."""
        for s in ledger.steps:
            if s.expected or s.unit not in CHECKED_UNITS or not s.lost:
                continue
            allowed = self.allowed(ledger.dataset, s.step)
            if s.lost_fraction > allowed + 1e-12:
                names = f": {s.names_text(NAMES_IN_ERROR)}" if s.lost_names else ""
                accepted = ledger.dataset in self.accepted and s.step in self.accepted[ledger.dataset]
                how = (
                    "raise data.accept" if accepted else "accept it with data.accept"
                ) + f".{ledger.dataset}.{s.step}: {{max_loss: ..., reason: ...}}"
                raise InputError(
                    f"{ledger.dataset}: step '{s.step}' lost {s.lost} of {s.entered} {s.unit} ({100 * s.lost_fraction:.1f}%, "
                    f"above the {100 * allowed:g}% allowed; {s.detail or STEPS[s.step]}){names}; {how}"
                )


def _fraction(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not 0 <= value <= 1:
        raise InputError(f"{where}: expected a fraction between 0 and 1, got {value!r}")
    return float(value)
