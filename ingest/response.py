"""A drug-response dataset assembled from its parts, every join counted in its ledger.

The parts: a table of measured pairs (cell line, drug, ln IC50), the expression profiles
of cell lines, and what the sources say about drug structures. `to_models` re-keys the
pairs' cell lines by the expression source's models (DepMap's ModelIDs), `assemble` gives
each drug its structure (`ingest.structures`), keeps the pairs whose cell line has a
profile and the profiles whose cell line has a pair. Each step records what it lost, and
why, by name.
"""

from __future__ import annotations

import anndata as ad
import pandas as pd

from celllm.errors import InputError
from ingest.ledger import Ledger
from ingest.structures import DrugStructures, attach_structures

RESPONSE_COLUMNS = ["cell_line", "drug", "smiles", "ln_ic50"]


def to_models(pairs: pd.DataFrame, key: str, matched: pd.DataFrame, ledger: Ledger, what: str) -> pd.DataFrame:
    """`pairs` with ``cell_line`` set to the model each distinct value of `pairs[key]` matched.

    `matched`: one row per distinct `key` value, in order of first appearance (as
    `DepMapModels.match` returns for them): model_id ('' where none), why_not. Pairs of
    unmatched cell lines are dropped (step ``cell_line_model``, in cell lines and pairs);
    two source cell lines on one model have their pairs averaged.
    """
    lines = pd.unique(pairs[key])
    if len(matched) != len(lines):
        raise ValueError("one match per distinct cell line, in order of first appearance")
    model = dict(zip(lines, matched["model_id"]))
    lost = [f"{line} ({why})" for line, m, why in zip(lines, matched["model_id"], matched["why_not"]) if not m]
    how = matched.loc[matched["model_id"] != "", "matched_by"].value_counts()
    ledger.record(
        "cell_line_model",
        "cell_lines",
        len(lines),
        len(lines) - len(lost),
        f"{what}: " + ", ".join(f"{n} by {label}" for label, n in how.items()),
        lost,
    )
    mapped = pairs.assign(cell_line=pairs[key].map(model))
    keep = mapped["cell_line"] != ""
    ledger.record("cell_line_model", "pairs", len(pairs), int(keep.sum()), "pairs of the cell lines without a model" if lost else "")
    if not keep.any():
        raise InputError(f"{what}: none of its {len(lines)} cell lines matches a model")
    mapped = mapped[keep]
    merged = mapped.groupby(["cell_line", "drug"], as_index=False, sort=False)["ln_ic50"].mean()
    if len(merged) < len(mapped):
        ledger.record(
            "duplicates",
            "rows",
            len(mapped),
            len(merged),
            "pairs of two source cell lines on one model averaged",
            changed=len(mapped) - len(merged),
            expected=True,
        )
    return merged


def assemble(
    expression: ad.AnnData, pairs: pd.DataFrame, structures: DrugStructures, ledger: Ledger, source: str
) -> tuple[ad.AnnData, pd.DataFrame]:
    """(cell-line profiles, response table cell_line, drug, smiles, ln_ic50) of a drug-response dataset.

    `pairs`: cell_line (an obs name of `expression` where the line has a profile), drug, ln_ic50.
    Steps recorded: drug_structure, cell_line_expression (pairs whose line has no profile are
    dropped) and unscreened (profiles of lines without a pair are left out).
    """
    pairs = attach_structures(pairs, structures, ledger, source)
    lines = pd.unique(pairs["cell_line"])
    profiled = pd.Index(lines).isin(expression.obs_names)
    ledger.record(
        "cell_line_expression",
        "cell_lines",
        len(lines),
        int(profiled.sum()),
        f"cell lines without an expression profile in {ledger.dataset}'s expression source",
        lines[~profiled],
    )
    keep = pairs["cell_line"].isin(expression.obs_names)
    ledger.record(
        "cell_line_expression",
        "pairs",
        len(pairs),
        int(keep.sum()),
        "pairs of the cell lines without a profile" if (~profiled).any() else "",
    )
    if not keep.any():
        raise InputError(f"{source}: none of its {len(lines)} cell lines has an expression profile")
    pairs = pairs[keep]
    screened = expression.obs_names.isin(pairs["cell_line"])
    ledger.record(
        "unscreened",
        "cell_lines",
        expression.n_obs,
        int(screened.sum()),
        "expression profiles of cell lines without a measured pair left out",
        expected=True,
    )
    response = pairs[RESPONSE_COLUMNS].sort_values(["cell_line", "drug"]).reset_index(drop=True)
    return expression[screened].copy(), response
