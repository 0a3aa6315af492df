"""The checkpoints a benchmark model can ask for: the configured pretraining, its ablations, and
the authors' released weights.

Each ablation changes the `pretrain` section of the configured CellLM config;
everything else (architecture, corpus, gene embeddings, seed) stays the same,
so a difference in the tables is the effect of that change alone. The released
checkpoint is not pretrained here: the workflow imports the authors' file
(`celllm import-released`) when the config says `released: true`.
"""

from __future__ import annotations

PRETRAINED = "pretrained"
ABLATIONS = {
    # the same encoder at initialisation: GraphMAE gene table, random Performer
    "untrained": {"max_steps": 0},
    # masked-bin prediction and tumor/normal only (close to scBERT's recipe)
    "no_contrastive": {"weight_contrastive": 0.0},
}
PRETRAININGS = (PRETRAINED, *ABLATIONS)
RELEASED = "released"  # the authors' weights (OpenBioMed), imported
RELEASED_FOLDER = "celllm_released"
CHECKPOINTS = (*PRETRAININGS, RELEASED)


def checkpoint_name(base: str, pretraining: str) -> str:
    """Folder name under results/pretrain/ of a checkpoint: `base` itself, `base_{ablation}`, or the released one's."""
    if pretraining not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint '{pretraining}' (known: {', '.join(CHECKPOINTS)})")
    if pretraining == RELEASED:
        return RELEASED_FOLDER
    return base if pretraining == PRETRAINED else f"{base}_{pretraining}"


def ablated_config(model: dict, base: str, checkpoint: str):
    """The CellLMConfig of checkpoint folder `checkpoint`: the configured `model`, with its ablation applied."""
    from celllm.config import CellLMConfig

    pretraining = next((p for p in PRETRAININGS if checkpoint_name(base, p) == checkpoint), None)
    if pretraining is None:
        raise ValueError(f"'{checkpoint}' is neither '{base}' nor one of its ablations ({', '.join(ABLATIONS)})")
    cfg = CellLMConfig.from_dict(model, "config: pretrain.model")
    return cfg.with_pretrain(**ABLATIONS[pretraining]) if pretraining in ABLATIONS else cfg
