"""Cell type annotation (Zheng68k, Baron): a stratified 70/10/20 split of labelled cells."""

from benchmarks.tasks.cells import CellClassification
from benchmarks.tasks.spec import Setting

TASK = CellClassification(
    "annotation",
    target="cell_type",
    settings={"standard": Setting(val=0.1, test=0.2, label="standard split")},
    headline=["accuracy", "macro_f1"],
    figure_metrics=["accuracy", "macro_f1"],
    title="Cell-type annotation on held-out cells",
    summary="cell type annotation (Zheng68k, Baron)",
    figures=("confusion",),
)
