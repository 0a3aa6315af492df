"""The pretrainings a benchmark model can ask for, and the checkpoint folder of each.

Words: a *pretraining* is a variant of the encoder a model asks for by name
("pretrained", an ablation, or "released"); a *checkpoint* is the folder under
results/pretrain/ that holds one (`checkpoint_folder`).

Each ablation changes the `pretrain` section of the configured CellLM config;
everything else (architecture, corpus, gene embeddings, seed) stays the same,
so a difference in the tables is the effect of that change alone. The released
pretraining is not trained here: the workflow imports the authors' file
(`celllm import-released`) when the config says `released: true`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from celllm.pretrain.objectives import objective

if TYPE_CHECKING:
    from celllm.config import CellLMConfig

PRETRAINED = "pretrained"
ABLATIONS = {
    # the same encoder at initialisation: GraphMAE gene table, random Performer
    "untrained": {"max_steps": 0},
    # masked-bin prediction and tumor/normal only (close to scBERT's recipe)
    "no_contrastive": {objective("contrastive").weight_key: 0.0},
}
TRAINED_HERE = (PRETRAINED, *ABLATIONS)
RELEASED = "released"  # the authors' weights (OpenBioMed), imported
RELEASED_CHECKPOINT = "celllm_released"
PRETRAININGS = (*TRAINED_HERE, RELEASED)


def checkpoint_folder(base: str, pretraining: str) -> str:
    """Folder name under results/pretrain/ of a pretraining: `base` itself, `base_{ablation}`, or the released one's."""
    if pretraining not in PRETRAININGS:
        raise ValueError(f"unknown pretraining '{pretraining}' (known: {', '.join(PRETRAININGS)})")
    if pretraining == RELEASED:
        return RELEASED_CHECKPOINT
    return base if pretraining == PRETRAINED else f"{base}_{pretraining}"


def pretraining_config(celllm: CellLMConfig, base: str, checkpoint: str) -> CellLMConfig:
    """The CellLMConfig that trains checkpoint folder `checkpoint`: the configured `celllm`, with its ablation applied."""
    pretraining = next((p for p in TRAINED_HERE if checkpoint_folder(base, p) == checkpoint), None)
    if pretraining is None:
        raise ValueError(f"'{checkpoint}' is neither '{base}' nor one of its ablations ({', '.join(ABLATIONS)})")
    return celllm.with_pretrain(**ABLATIONS[pretraining]) if pretraining in ABLATIONS else celllm
