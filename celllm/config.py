"""One config for a CellLM model and its pretraining, saved as a checkpoint's config.json.

Every choice the paper leaves open is a named field here, with the reason for
its default beside it; a checkpoint's own config.json is a valid `--config`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from celllm.errors import InputError
from celllm.model.encoder import EncoderConfig
from celllm.options import Options, option
from celllm.tokens import TokenConfig


@dataclass(frozen=True)
class PretrainConfig(Options):
    """Pretraining choices. None of these is published; defaults are this project's."""

    label = "pretrain option"

    batch_size: int = option(256, low=2)  # cells per optimizer step (contrastive negatives come from the whole batch)
    sub_batch_size: int = option(32, low=1)  # cells per forward pass in divide-and-conquer; only memory depends on it
    # If > 0, a forward pass also holds at most this many padded tokens, so that the pass
    # with the longest cells is no larger than the others (flat peak memory). 0: cells only.
    sub_batch_tokens: int = option(0, low=0)
    max_steps: int = option(1000, low=0)
    lr: float = option(1e-4, low=0.0, low_open=True)
    weight_decay: float = option(0.01, low=0.0)
    warmup_steps: int = option(100, low=0)  # linear warm-up, then cosine decay to 0 at max_steps
    grad_clip: float = option(1.0, low=0.0, low_open=True)
    # Two views of a cell: each keeps a random `view_keep` share of its non-zero
    # genes and hides `mask_ratio` of the kept bins behind [MASK].
    view_keep: float = option(0.8, low=0.0, low_open=True, high=1.0)
    mask_ratio: float = option(0.15, low=0.0, high=1.0, high_open=True)
    # NT-Xent temperature. The configs use 0.05 with the mean-pooled embedding and no projection head:
    # the recipe study's choice (benchmarks/recipe.py); 0.5 is the study's starting point.
    temperature: float = option(0.5, low=0.0, low_open=True)
    proj_dim: int = option(128, low=1)  # contrastive projection head output
    # "mlp": SimCLR's projection head (dim -> dim -> proj_dim) between the cell embedding and the
    # contrastive loss; "none": the loss sees the cell embedding itself (proj_dim unused)
    projection: str = option("mlp", choices=("mlp", "none"))
    # How a view drops genes: "uniform", or "low_expression" (weakly expressed genes dropped more
    # often, as sequencing loses them), and the share of kept bins moved one bin up or down
    # (celllm.pretrain.objectives.make_views).
    view_drop: str = option("uniform", choices=("uniform", "low_expression"))
    bin_noise: float = option(0.0, low=0.0, high=1.0)
    # classes of the masked-bin head; 0: the expression bins (tokens.n_bins). The released model's
    # head has 8 (the bins, [CLS] and PAD), kept as it is when it is imported.
    mlm_classes: int = option(0, low=0)
    weight_contrastive: float = option(1.0, low=0.0)
    weight_mlm: float = option(1.0, low=0.0)
    weight_tissue: float = option(1.0, low=0.0)
    # How a GraphMAE gene-embedding table (--gene-embeddings) is used: kept "frozen", as in the
    # released model, or "trainable". Without a table, gene embeddings start random and train.
    gene_embeddings: str = option("frozen", choices=("frozen", "trainable"))
    precision: str = option("bf16", choices=("bf16", "fp32"))  # "bf16": autocast on CUDA (CPU always runs float32); "fp32": never
    checkpoint_every: int = option(0, low=0)  # optimizer steps between checkpoints; 0 = only at the end
    seed: int = option(0, low=0)


@dataclass(frozen=True)
class CellLMConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tokens: TokenConfig = field(default_factory=TokenConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    SECTIONS = {"encoder": EncoderConfig, "tokens": TokenConfig, "pretrain": PretrainConfig}

    def to_dict(self) -> dict:
        return {name: getattr(self, name).to_dict() for name in self.SECTIONS}

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> CellLMConfig:
        unknown = set(values) - set(cls.SECTIONS)
        if unknown:
            raise InputError(f"{source}: unknown section(s) {', '.join(sorted(unknown))} (expected {', '.join(cls.SECTIONS)})")
        try:
            return cls(**{name: kind.from_dict(values.get(name) or {}) for name, kind in cls.SECTIONS.items()})
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> CellLMConfig:
        """Read a JSON or YAML config (a checkpoint's config.json works)."""
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: config file not found")
        try:
            values = yaml.safe_load(path.read_text())  # YAML is a superset of JSON
        except yaml.YAMLError as exc:
            raise InputError(f"{path}: not valid JSON/YAML ({exc.__class__.__name__})") from None
        if not isinstance(values, dict):
            raise InputError(f"{path}: expected a mapping with sections encoder/tokens/pretrain")
        return cls.from_dict(values, str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def with_pretrain(self, **changes) -> CellLMConfig:
        """Copy with some pretraining options replaced (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        try:
            return replace(self, pretrain=replace(self.pretrain, **changes))
        except ValueError as exc:
            raise InputError(str(exc)) from None
