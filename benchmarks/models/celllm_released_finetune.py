"""The authors' released CellLM fine-tuned with the released recipe (last Performer layer + final
norm + head, class-weighted cross-entropy), the epoch chosen on validation as in celllm_finetune.

Runs when the config says `released: true`.
"""

from benchmarks.models.celllm_finetune import DEFAULTS, CellLMFineTune
from benchmarks.registry import register


@register(
    "celllm_released_finetune",
    kind="celllm",
    tasks=("annotation", "drug_sensitivity"),
    summary="the authors' released weights in their fine-tuning recipe: last Performer layer + final norm + their head over every gene's state, class-weighted CE (epoch picked on validation, not test)",
    reference="Zhao, Zhang & Nie 2023; OpenBioMed configs/ctc/cellLM.json, checkpoint4_fixed.pth",
    pretraining="released",
    options=DEFAULTS,
)
class CellLMReleasedFineTune(CellLMFineTune):
    pass
