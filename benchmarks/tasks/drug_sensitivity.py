"""Single-cell drug sensitivity (GSE149383 erlotinib, GSE117872 cisplatin): sensitive vs resistant cells."""

from benchmarks.tasks.cells import CellClassification
from benchmarks.tasks.spec import Setting

TASK = CellClassification(
    "drug_sensitivity",
    target="response",
    # the paper: full = 80% of the cells train, few-shot = 5%; both are tested on the same cells
    settings={
        "full": Setting(val=0.1, test=0.1, label="full training set"),
        "few_shot": Setting(val=0.05, test=0.1, train=0.05, label="few-shot"),
    },
    headline=["f1", "auroc", "aupr", "accuracy"],
    figure_metrics=["f1", "auroc"],
    title="Drug sensitivity of single cells",
    positive="sensitive",
    summary="single-cell drug sensitivity (GSE149383 erlotinib, GSE117872 cisplatin)",
    settings_side_by_side=True,
)
