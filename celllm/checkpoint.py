"""The checkpoint folder: config.json, vocab.txt, model.safetensors, trainer_state.pt, train_log.csv.

Weights are safetensors; the trainer state (optimizer, schedule, step, random
state) is a torch.save of plain tensors and numbers, read with
weights_only=True. A checkpoint refuses to load against another vocabulary.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from celllm.config import CellLMConfig
from celllm.errors import InputError
from celllm.io import atomic_path
from celllm.pretrain.model import CellLMForPretraining
from celllm.tokens import Vocabulary

CONFIG, VOCAB, WEIGHTS, TRAINER_STATE, TRAIN_LOG = "config.json", "vocab.txt", "model.safetensors", "trainer_state.pt", "train_log.csv"


def save_checkpoint(path, model: CellLMForPretraining, vocab: Vocabulary, cfg: CellLMConfig, trainer_state: dict | None = None, log: list[dict] | None = None) -> None:
    """Write the whole folder under a temporary name, then rename it into place."""
    with atomic_path(path) as tmp:
        tmp.mkdir()
        cfg.save(tmp / CONFIG)
        vocab.save(tmp / VOCAB)
        save_file({k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS))
        _readable_by_group(tmp / WEIGHTS)
        if trainer_state is not None:
            torch.save(trainer_state, tmp / TRAINER_STATE)
        if log:
            pd.DataFrame(log).to_csv(tmp / TRAIN_LOG, index=False)


def _readable_by_group(path: Path) -> None:
    """safetensors writes owner-only files; give the weights the usual umask-based mode to share them."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.exists():
        raise InputError(f"{folder}: not a CellLM checkpoint folder (missing {name})")
    return path


def load_checkpoint(path, vocab: Vocabulary | None = None, map_location="cpu") -> tuple[CellLMForPretraining, Vocabulary, CellLMConfig]:
    """Model (in eval mode), vocabulary and config of a checkpoint folder.

    If `vocab` is given, the checkpoint must have been trained on exactly it.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{folder}: checkpoint folder not found")
    cfg = CellLMConfig.load(_require(folder, CONFIG))
    ckpt_vocab = Vocabulary.load(_require(folder, VOCAB))
    if vocab is not None and vocab != ckpt_vocab:
        raise InputError(f"{folder}: checkpoint was trained on another gene vocabulary ({len(ckpt_vocab)} genes, expected {len(vocab)})")
    try:
        state = load_file(str(_require(folder, WEIGHTS)), device=str(map_location))
    except Exception as exc:
        raise InputError(f"{folder / WEIGHTS}: unreadable weights ({exc})") from None
    rows = state.get("encoder.gene_embedding.weight")
    if rows is None or rows.shape[0] != len(ckpt_vocab) + 2:
        found = "none" if rows is None else rows.shape[0] - 2
        raise InputError(f"{folder}: weights are for a vocabulary of {found} genes but {VOCAB} lists {len(ckpt_vocab)}")
    model = CellLMForPretraining(len(ckpt_vocab), cfg)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{folder}: weights do not match {CONFIG} ({str(exc).splitlines()[0]})") from None
    return model.eval(), ckpt_vocab, cfg


def load_trainer_state(path) -> dict | None:
    file = Path(path) / TRAINER_STATE
    return torch.load(file, weights_only=True) if file.exists() else None


def checkpoint_hash(path) -> str:
    """sha256 of the weights file: names exactly which model made a result."""
    digest = hashlib.sha256()
    with open(Path(path) / WEIGHTS, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
