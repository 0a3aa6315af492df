"""CellLM: the pretrained encoder frozen, a head trained on its cell embeddings ([CLS], or the mean of the gene states: encoder.pooling).

Cells: logistic regression (a linear probe). Cell-line drug response: the
released recipe, the cell line's embedding beside a 3-layer GIN over the
drug's molecular graph.
"""

from benchmarks.models._drug_options import DRUG_RESPONSE_OPTIONS
from benchmarks.models.celllm_common import ALL_TASKS, FrozenCellLM
from benchmarks.registry import register


@register(
    "celllm_probe",
    kind="celllm",
    colour="#08519c",
    tasks=ALL_TASKS,
    summary="this project's CellLM, frozen cell embedding + this project's heads (logistic regression; GIN drug encoder + MLP for pairs)",
    reference="Zhao, Zhang & Nie 2023, arXiv 2306.04371",
    pretraining="pretrained",
    options=DRUG_RESPONSE_OPTIONS,  # of the GIN head; the linear probe of cells takes none
    option_tasks=("drug_response",),
)
class CellLMProbe(FrozenCellLM):
    pass
