"""Ablation: CellLM pretrained without the divide-and-conquer contrastive loss.

Only masked-bin prediction and tumor/normal discrimination train the encoder
(close to scBERT's masked-language-model recipe); the gap to celllm_probe is
what the contrastive objective adds.
"""

from benchmarks.models._drug_options import DRUG_RESPONSE_OPTIONS
from benchmarks.models.celllm_common import ALL_TASKS, FrozenCellLM
from benchmarks.registry import register


@register(
    "celllm_no_contrastive_probe",
    kind="celllm",
    colour="#6baed6",
    tasks=ALL_TASKS,
    summary="ablation: celllm_probe on CellLM pretrained without the contrastive loss (MLM + tumor/normal)",
    reference="ablation of Zhao, Zhang & Nie 2023; scBERT, Yang et al. 2022",
    pretraining="no_contrastive",
    options=DRUG_RESPONSE_OPTIONS,  # of the GIN head; the linear probe of cells takes none
    option_tasks=("drug_response",),
)
class CellLMNoContrastiveProbe(FrozenCellLM):
    pass
