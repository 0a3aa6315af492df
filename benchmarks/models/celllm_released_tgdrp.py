"""The CellLM authors' released drug-response recipe over their released weights: TGSA's TGDRP with
the released CellLM as the cell encoder (OpenBioMed configs/drp/CellLM_randsplit.json and
CellLM.json, scripts/aidd/drp/celllm.sh). Runs when the config says `released: true`.
Network, training and every difference from the authors' run: benchmarks/models/_tgdrp.py.
"""

from benchmarks.models._tgdrp import CellLMRecipe
from benchmarks.registry import register


@register(
    "celllm_released_tgdrp",
    kind="celllm",
    tasks=("drug_response",),
    summary="the authors' released weights in their drug-response recipe: TGSA's TGDRP with CellLM (last layer tuned) as the cell encoder",
    reference="Zhao, Zhang & Nie 2023; OpenBioMed configs/drp/CellLM_randsplit.json, scripts/aidd/drp/celllm.sh",
    pretraining="released",
    options=CellLMRecipe.OPTIONS,
)
class CellLMReleasedTGDRP(CellLMRecipe):
    pass
