"""The authors' released CellLM (OpenBioMed weights, imported), frozen, with the heads of celllm_probe.

Runs when the config says `released: true` (the workflow then imports the released
file; see README, "Use the authors' released CellLM").
"""

from benchmarks.models._drug_options import DRUG_RESPONSE_OPTIONS
from benchmarks.models.celllm_common import ALL_TASKS, FrozenCellLM
from benchmarks.registry import register


@register(
    "celllm_released_probe",
    kind="celllm",
    tasks=ALL_TASKS,
    summary="the authors' released weights with this project's heads, not the authors' recipe: frozen [CLS] embedding + logistic regression (GIN drug encoder + MLP for pairs)",
    reference="Zhao, Zhang & Nie 2023; OpenBioMed checkpoint4_fixed.pth",
    pretraining="released",
    options=DRUG_RESPONSE_OPTIONS,  # of the GIN head; the linear probe of cells takes none
    option_tasks=("drug_response",),
)
class CellLMReleasedProbe(FrozenCellLM):
    pass
