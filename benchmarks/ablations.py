"""The pretrainings a benchmark model can ask for: the configured one and its ablations.

Each ablation changes the `pretrain` section of the configured CellLM config;
everything else (architecture, corpus, gene embeddings, seed) stays the same,
so a difference in the tables is the effect of that change alone.
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


def checkpoint_name(base: str, pretraining: str) -> str:
    """Folder name under results/pretrain/ of a pretraining: `base` itself, or `base_{ablation}`."""
    if pretraining not in PRETRAININGS:
        raise ValueError(f"unknown pretraining '{pretraining}' (known: {', '.join(PRETRAININGS)})")
    return base if pretraining == PRETRAINED else f"{base}_{pretraining}"


def ablated_config(model: dict, base: str, checkpoint: str):
    """The CellLMConfig of checkpoint folder `checkpoint`: the configured `model`, with its ablation applied."""
    from celllm.config import CellLMConfig

    pretraining = next((p for p in PRETRAININGS if checkpoint_name(base, p) == checkpoint), None)
    if pretraining is None:
        raise ValueError(f"'{checkpoint}' is neither '{base}' nor one of its ablations ({', '.join(ABLATIONS)})")
    cfg = CellLMConfig.from_dict(model, "config: pretrain.model")
    return cfg.with_pretrain(**ABLATIONS[pretraining]) if pretraining in ABLATIONS else cfg
