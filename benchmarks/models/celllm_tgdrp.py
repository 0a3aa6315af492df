"""The CellLM authors' released drug-response recipe (TGSA's TGDRP with CellLM as the cell encoder,
OpenBioMed configs/drp/CellLM_randsplit.json and scripts/aidd/drp/celllm.sh) over the CellLM
pretrained here. `celllm_released_tgdrp` is the same recipe over the authors' own weights.
Network, training and every difference from the authors' run: benchmarks/models/_tgdrp.py.
"""

from benchmarks.models._tgdrp import CellLMRecipe
from benchmarks.registry import register


@register(
    "celllm_tgdrp",
    kind="celllm",
    tasks=("drug_response",),
    summary="this project's CellLM in the authors' drug-response recipe: TGSA's TGDRP with CellLM (last layer tuned) as the cell encoder",
    reference="Zhao, Zhang & Nie 2023; OpenBioMed configs/drp/CellLM_randsplit.json, scripts/aidd/drp/celllm.sh",
    pretraining="pretrained",
    options=CellLMRecipe.OPTIONS,
)
class CellLMTGDRP(CellLMRecipe):
    pass
