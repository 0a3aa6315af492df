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
from celllm.options import Options
from celllm.tokens import TokenConfig


@dataclass(frozen=True)
class PretrainConfig(Options):
    """Pretraining choices. None of these is published; defaults are this project's."""

    label = "pretrain option"

    batch_size: int = 256  # cells per optimizer step (contrastive negatives come from the whole batch)
    sub_batch_size: int = 32  # cells per forward pass in divide-and-conquer; only memory depends on it
    # If > 0, a forward pass also holds at most this many padded tokens, so that the pass
    # with the longest cells is no larger than the others (flat peak memory). 0: cells only.
    sub_batch_tokens: int = 0
    max_steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100  # linear warm-up, then cosine decay to 0 at max_steps
    grad_clip: float = 1.0
    # Two views of a cell: each keeps a random `view_keep` share of its non-zero
    # genes and hides `mask_ratio` of the kept bins behind [MASK].
    view_keep: float = 0.8
    mask_ratio: float = 0.15
    # NT-Xent temperature. At 0.1 instance discrimination dominated the demo and the
    # tumor-vs-normal loss stayed flat (0.67 after 300 steps); at 0.5 it fell to 0.55.
    temperature: float = 0.5
    proj_dim: int = 128  # contrastive projection head output
    weight_contrastive: float = 1.0
    weight_mlm: float = 1.0
    weight_tissue: float = 1.0
    # How a GraphMAE gene-embedding table (--gene-embeddings) is used: kept "frozen", as in the
    # released model, or "trainable". Without a table, gene embeddings start random and train.
    gene_embeddings: str = "frozen"
    precision: str = "bf16"  # "bf16": autocast on CUDA (CPU always runs float32); "fp32": never
    checkpoint_every: int = 0  # optimizer steps between checkpoints; 0 = only at the end
    seed: int = 0

    def __post_init__(self):
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2 (the contrastive loss needs negatives)")
        if self.sub_batch_size < 1 or self.sub_batch_tokens < 0:
            raise ValueError("sub_batch_size must be at least 1 and sub_batch_tokens at least 0")
        if not 0 < self.view_keep <= 1 or not 0 <= self.mask_ratio < 1:
            raise ValueError("view_keep must be in (0, 1] and mask_ratio in [0, 1)")
        if self.gene_embeddings not in ("frozen", "trainable"):
            raise ValueError(f"gene_embeddings must be 'frozen' or 'trainable', not '{self.gene_embeddings}'")
        if self.precision not in ("bf16", "fp32"):
            raise ValueError(f"precision must be 'bf16' or 'fp32', not '{self.precision}'")


@dataclass(frozen=True)
class CellLMConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    tokens: TokenConfig = field(default_factory=TokenConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)

    SECTIONS = {"encoder": EncoderConfig, "tokens": TokenConfig, "pretrain": PretrainConfig}

    def to_dict(self) -> dict:
        return {name: getattr(self, name).to_dict() for name in self.SECTIONS}

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "CellLMConfig":
        unknown = set(values) - set(cls.SECTIONS)
        if unknown:
            raise InputError(f"{source}: unknown section(s) {', '.join(sorted(unknown))} (expected {', '.join(cls.SECTIONS)})")
        try:
            return cls(**{name: kind.from_dict(values.get(name) or {}) for name, kind in cls.SECTIONS.items()})
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> "CellLMConfig":
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

    def with_pretrain(self, **changes) -> "CellLMConfig":
        """Copy with some pretraining options replaced (None values are ignored)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        try:
            return replace(self, pretrain=replace(self.pretrain, **changes))
        except ValueError as exc:
            raise InputError(str(exc)) from None
