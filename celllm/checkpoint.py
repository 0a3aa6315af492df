"""The checkpoint folder: config.json, vocab.txt, model.safetensors, trainer_state.pt, train_log.csv.

Two loaders read it: `load_encoder` builds the encoder alone and loads its weights
(inference: `celllm embed`, the benchmark models), `load_checkpoint` the whole
pretraining model with its heads (resuming a run). Both read the same weights file.

Weights are safetensors; the trainer state (optimizer, schedule, step, random
state) is a torch.save of plain tensors and numbers, read with
weights_only=True. A checkpoint refuses to load against another vocabulary, and
the weights carry the SHA-256 of their gene order, so a vocab.txt whose lines
were reordered or edited is refused too. The folder's record
(`celllm.outputs`) ties its files together: a file edited or copied in from
another run is refused on load, naming it (an edited config.json is taken
only knowingly, `accept_edited_config`, with what changed in the log).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from celllm.config import CellLMConfig
from celllm.errors import InputError
from celllm.model import CellLMEncoder
from celllm.outputs import atomic_path, file_sha256, recover_interrupted_swap, verify_record, write_record
from celllm.tokens import N_SPECIAL_GENE_IDS, Vocabulary, gene_table_rows

if TYPE_CHECKING:
    from torch import nn

    from celllm.pretrain.model import CellLMForPretraining

logger = logging.getLogger(__name__)

CONFIG, VOCAB, WEIGHTS, TRAINER_STATE, TRAIN_LOG = "config.json", "vocab.txt", "model.safetensors", "trainer_state.pt", "train_log.csv"
VOCAB_SHA256 = "vocab_sha256"  # metadata key of the weights file
KIND = "CellLM checkpoint"  # its kind in the folder's record


def vocab_sha256(vocab: Vocabulary) -> str:
    """SHA-256 of the gene order (the rows of the gene embedding)."""
    return vocab.sha256()


def is_checkpoint(folder) -> bool:
    """Whether `folder` looks like a checkpoint folder (the files every checkpoint has)."""
    return all((Path(folder) / name).is_file() for name in (CONFIG, VOCAB, WEIGHTS))


def save_checkpoint(
    path,
    model: nn.Module,
    vocab: Vocabulary,
    cfg: CellLMConfig,
    trainer_state: dict | None = None,
    log: list[dict] | None = None,
    extra: dict[str, str] | None = None,
    made_by: str = "pretrain",
) -> None:
    """Write the whole folder under a temporary name, with its record, then rename it into place
    (`model`: a CellLMForPretraining, its state dict is the weights; `extra`: more text files, name -> content; `made_by`: the command, kept in the record)."""
    with atomic_path(path) as tmp:
        tmp.mkdir()
        for name, text in (extra or {}).items():
            (tmp / name).write_text(text)
        cfg.save(tmp / CONFIG)
        vocab.save(tmp / VOCAB)
        save_file(
            {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()},
            str(tmp / WEIGHTS),
            metadata={VOCAB_SHA256: vocab_sha256(vocab)},
        )
        _readable_by_group(tmp / WEIGHTS)
        if trainer_state is not None:
            torch.save(trainer_state, tmp / TRAINER_STATE)
        if log:
            pd.DataFrame(log).to_csv(tmp / TRAIN_LOG, index=False)
        write_record(tmp, KIND, made_by, config=cfg.to_dict())


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


def _flat(values: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in values.items():
        flat.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def config_changes(saved: dict, now: dict) -> list[str]:
    """'section.key old -> new' for every option that differs."""
    saved, now = _flat(saved), _flat(now)
    return [f"{key} {saved.get(key)!r} -> {now.get(key)!r}" for key in sorted(set(saved) | set(now)) if saved.get(key) != now.get(key)]


def verify_checkpoint(folder: Path, accept_edited_config: bool = False) -> CellLMConfig:
    """The checkpoint's config, once its files match its record (InputError naming the first that does not).

    An edited config.json is refused, naming what changed, unless `accept_edited_config`,
    which uses it with a warning saying what changed.
    """
    record = verify_record(folder, KIND, skip={CONFIG})
    config = _require(folder, CONFIG)
    if record is not None and CONFIG in record["files"] and file_sha256(config) != record["files"][CONFIG]:
        try:
            changes = "; ".join(config_changes(record.get("config", {}), json.loads(config.read_text()))) or "formatting only"
        except ValueError:
            changes = "no longer JSON"
        if not accept_edited_config:
            raise InputError(
                f"{config}: edited after the checkpoint was written ({changes}); restore it, or accept it "
                "knowingly (--accept-edited-config)"
            )
        logger.warning("%s: edited after the checkpoint was written, used as edited: %s", config, changes)
    return CellLMConfig.load(config)


def load_vocab_and_config(path, accept_edited_config: bool = False) -> tuple[Vocabulary, CellLMConfig]:
    """Vocabulary and config of a checkpoint folder, its files verified against its record, without its weights
    (for a job that reports on embeddings others made)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{folder}: checkpoint folder not found")
    cfg = verify_checkpoint(folder, accept_edited_config)
    return Vocabulary.load(_require(folder, VOCAB)), cfg


ENCODER = "encoder."  # key prefix of the encoder's weights; the pretraining heads' follow their objectives


def _read_weights(
    path, vocab: Vocabulary | None, map_location, accept_edited_config: bool, only: str = ""
) -> tuple[dict[str, torch.Tensor], Vocabulary, CellLMConfig, Path]:
    """(weights whose keys start with `only`, vocabulary, config, folder) of a checkpoint folder, its files verified
    against its record and the weights against the vocabulary. If `vocab` is given, the checkpoint must have
    been trained on exactly it."""
    folder = Path(path)
    if recover_interrupted_swap(folder):
        logger.warning("%s: recovered the checkpoint from a save that was interrupted", folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: checkpoint folder not found")
    cfg = verify_checkpoint(folder, accept_edited_config)
    ckpt_vocab = Vocabulary.load(_require(folder, VOCAB))
    if vocab is not None and vocab != ckpt_vocab:
        raise InputError(f"{folder}: checkpoint was trained on another gene vocabulary ({len(ckpt_vocab)} genes, expected {len(vocab)})")
    try:
        with safe_open(str(_require(folder, WEIGHTS)), "pt", device=str(map_location)) as weights:
            recorded = (weights.metadata() or {}).get(VOCAB_SHA256)
            state = {key: weights.get_tensor(key) for key in weights.keys() if key.startswith(only)}
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{folder / WEIGHTS}: unreadable weights ({exc})") from None
    if recorded is not None and recorded != vocab_sha256(ckpt_vocab):
        raise InputError(
            f"{folder / VOCAB}: not the gene order the weights were trained with (reordered or edited); restore the original file"
        )
    rows = state.get(ENCODER + "gene_embedding.weight")
    if rows is None or rows.shape[0] != gene_table_rows(len(ckpt_vocab)):
        found = "none" if rows is None else rows.shape[0] - N_SPECIAL_GENE_IDS
        raise InputError(f"{folder}: weights are for a vocabulary of {found} genes but {VOCAB} lists {len(ckpt_vocab)}")
    return state, ckpt_vocab, cfg, folder


def _load_into(module, state: dict[str, torch.Tensor], folder: Path):
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(f"{folder}: weights do not match {CONFIG} ({str(exc).splitlines()[0]})") from None
    return module.eval()


def load_encoder(
    path, vocab: Vocabulary | None = None, map_location="cpu", accept_edited_config: bool = False
) -> tuple[CellLMEncoder, Vocabulary, CellLMConfig]:
    """Encoder (in eval mode), vocabulary and config of a checkpoint folder, for inference: only the encoder
    is built and only its weights are read; the pretraining heads are not. Draws no random numbers (torch's
    random state is as before). Checks as `load_checkpoint`."""
    state, ckpt_vocab, cfg, folder = _read_weights(path, vocab, map_location, accept_edited_config, only=ENCODER)
    with torch.random.fork_rng(devices=[]):  # the initialisation it overwrites draws from the global generator
        encoder = CellLMEncoder.from_config(len(ckpt_vocab), cfg)
    return _load_into(encoder, {key[len(ENCODER) :]: value for key, value in state.items()}, folder), ckpt_vocab, cfg


def load_checkpoint(
    path, vocab: Vocabulary | None = None, map_location="cpu", accept_edited_config: bool = False
) -> tuple[CellLMForPretraining, Vocabulary, CellLMConfig]:
    """The whole pretraining model (in eval mode: encoder and heads, to resume a run), vocabulary and config of a
    checkpoint folder, its files verified against its record. For inference, `load_encoder`.

    If `vocab` is given, the checkpoint must have been trained on exactly it.
    """
    from celllm.pretrain.model import CellLMForPretraining  # the heads, only here

    state, ckpt_vocab, cfg, folder = _read_weights(path, vocab, map_location, accept_edited_config)
    return _load_into(CellLMForPretraining(len(ckpt_vocab), cfg), state, folder), ckpt_vocab, cfg


def load_trainer_state(path) -> dict | None:
    """The optimizer/schedule/step/random state of a checkpoint, or None if it has none."""
    file = Path(path) / TRAINER_STATE
    if not file.exists():
        return None
    try:
        state = torch.load(file, weights_only=True)
    except Exception as exc:  # truncated or foreign files raise many types
        raise InputError(
            f"{file}: unreadable trainer state ({type(exc).__name__}); the weights may still load, but this run cannot resume from it"
        ) from None
    if not isinstance(state, dict) or not {"step", "optimizer", "scheduler", "torch_rng"} <= set(state):
        raise InputError(f"{file}: not a CellLM trainer state (expected step, optimizer, scheduler, torch_rng)")
    return state


def checkpoint_hash(path) -> str:
    """sha256 of the weights file: names exactly which model made a result."""
    return file_sha256(Path(path) / WEIGHTS)


def progress_folder(out, inputs, settings: dict | None = None) -> Path:
    """Where a job that must write `out` only when finished keeps its periodic checkpoints meanwhile.

    A hidden sibling of `out` named after it and after a digest of `inputs` (path, size,
    modification time of each) and of `settings` (the job's config), so that the same job
    run again after a kill resumes there, while a job on changed inputs or settings starts
    afresh. (A workflow manager removes the declared output of a killed job; this folder
    is not declared, so it survives.)
    """
    out = Path(out)
    digest = hashlib.sha256()
    for given in map(Path, inputs):
        stat = given.stat()
        digest.update(f"{given.as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    if settings is not None:
        digest.update(json.dumps(settings, sort_keys=True).encode())
    return out.parent / f".{out.name}.progress-{digest.hexdigest()[:16]}"


def publish_checkpoint(progress, out) -> Path:
    """Put the finished checkpoint `progress` in place as `out` (atomically; hard links where the
    file system allows, so nothing is copied), then remove `progress`."""
    progress, out = Path(progress), Path(out)
    if not is_checkpoint(progress):
        raise InputError(f"{progress}: no finished checkpoint to publish")
    with atomic_path(out) as tmp:
        try:
            shutil.copytree(progress, tmp, copy_function=os.link)
        except OSError:  # another file system: copy
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(progress, tmp)
    shutil.rmtree(progress)
    return out
