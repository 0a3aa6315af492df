"""Ablation: CellLM without pretraining, as a frozen encoder with the same heads as celllm_probe.

The encoder is the pretraining's initial state (the GraphMAE gene table and
a random Performer), so the gap to celllm_probe is what pretraining adds.
"""

from benchmarks.models._drug_options import DRUG_RESPONSE_OPTIONS
from benchmarks.models.celllm_common import ALL_TASKS, FrozenCellLM
from benchmarks.registry import register


@register(
    "celllm_untrained_probe",
    kind="celllm",
    colour="#9ecae1",
    tasks=ALL_TASKS,
    summary="ablation: celllm_probe on the untrained encoder (GraphMAE genes, random Performer)",
    reference="ablation of Zhao, Zhang & Nie 2023",
    pretraining="untrained",
    options=DRUG_RESPONSE_OPTIONS,  # of the GIN head; the linear probe of cells takes none
    option_tasks=("drug_response",),
)
class CellLMUntrainedProbe(FrozenCellLM):
    pass
