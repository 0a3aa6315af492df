"""The pretraining loop: batches, views, divide-and-conquer steps, schedule, checkpoints.

Everything random is derived from the seed and the step number (batch order,
views, random-feature redraws) or saved in the checkpoint (model init, torch
random state), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from celllm.checkpoint import TRAIN_LOG, TRAINER_STATE, load_checkpoint, load_trainer_state, save_checkpoint
from celllm.config import CellLMConfig, PretrainConfig
from celllm.errors import InputError
from celllm.outputs import check_writable, recover_interrupted_swap
from celllm.pretrain.corpus import Corpus
from celllm.pretrain.distributed import SingleProcess, device_for
from celllm.pretrain.dnc import StepSetup, divide_and_conquer_step, pad_sub_batches
from celllm.pretrain.model import CellLMForPretraining
from celllm.pretrain.objectives import IGNORE, make_views
from celllm.pretrain.precision import autocast_dtype

log = logging.getLogger(__name__)

# options a resumed run may change: how long it runs and how often it saves
RESUMABLE_CHANGES = {"max_steps", "checkpoint_every"}


def resume_conflicts(saved: CellLMConfig, run: CellLMConfig) -> list[str]:
    """The options of `run` that differ from the checkpoint's `saved` ones and would make the
    resumed run another run than the one saved (everything but RESUMABLE_CHANGES)."""
    conflicts = []
    for section in CellLMConfig.SECTIONS:
        before, after = getattr(saved, section).to_dict(), getattr(run, section).to_dict()
        conflicts += [
            f"{section}.{key} {before[key]!r} -> {after[key]!r}"
            for key in before
            if key not in RESUMABLE_CHANGES and before[key] != after[key]
        ]
    return conflicts


def by_length(indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Batch cells sorted by length, so each sub-batch needs little padding.

    The contrastive loss does not depend on the order of cells in the batch.
    """
    return indices[np.argsort(lengths[indices], kind="stable")]


class BatchOrder:
    """The cells of each optimizer step, for one data-parallel rank.

    Every epoch is a seeded permutation of the corpus (drawn once per epoch, not
    per step; the last partial batch is dropped). The global batch of a step is
    sorted by length and rank r takes every world_size-th cell from position r,
    so the ranks get alike lengths and, together, the whole batch. Deterministic
    from (seed, step): a resumed run or another number of ranks sees the same batches.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        self.lengths, self.batch_size, self.seed, self.rank, self.world_size = lengths, batch_size, seed, rank, world_size
        self.steps_per_epoch = len(lengths) // batch_size
        self._epoch, self._order = None, None

    def global_batch(self, step: int) -> np.ndarray:
        epoch, position = divmod(step, self.steps_per_epoch)
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.lengths))
        return by_length(self._order[position * self.batch_size : (position + 1) * self.batch_size], self.lengths)

    def cells(self, step: int) -> np.ndarray:
        return self.global_batch(step)[self.rank :: self.world_size]


def warmup_cosine(warmup_steps: int, max_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict, file: Path) -> None:
    """Restore the optimizer from a trainer state; InputError if the state belongs to a model of another shape."""
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{file}: the optimizer state does not fit this model ({exc}); it belongs to another run") from None
    for group in optimizer.param_groups:
        for param in group["params"]:
            moments = [v for v in optimizer.state.get(param, {}).values() if torch.is_tensor(v) and v.dim() > 0]
            if any(m.shape != param.shape for m in moments):
                raise InputError(f"{file}: the optimizer state is for parameters of another shape; it belongs to another model size")


def pretrain(
    corpus: Corpus,
    out_dir,
    cfg: CellLMConfig,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    group: SingleProcess = SingleProcess(),
    gene_embeddings: torch.Tensor | None = None,
    accept_edited_config: bool = False,
) -> Path:
    """Pretrain CellLM on `corpus`; write the checkpoint folder `out_dir`. Returns its path.

    `gene_embeddings` (one row per vocabulary gene, e.g. from GraphMAE) initialise
    phi_G, frozen or trainable as `cfg.pretrain.gene_embeddings` says. With a
    data-parallel `group`, every rank calls this with the same arguments;
    `cfg.pretrain.batch_size` is the global batch and rank 0 writes the checkpoints.
    """
    out_dir = Path(out_dir)
    p = cfg.pretrain
    device = device or device_for(group)
    if p.batch_size > len(corpus.cells):
        raise InputError(f"batch size {p.batch_size} is larger than the corpus ({len(corpus.cells)} cells)")
    if p.batch_size % group.world_size:
        raise InputError(f"batch size {p.batch_size} does not split evenly over {group.world_size} processes")
    if p.weight_tissue > 0 and (corpus.tissue == IGNORE).all():
        log.warning(
            "no cell of the corpus has a tissue label: the tumor/normal objective (weight_tissue %g) is 0 throughout", p.weight_tissue
        )
    if group.rank == 0:
        check_writable(out_dir.parent, str(out_dir))  # before any work, not after the last step
        if resume and recover_interrupted_swap(out_dir):
            log.warning("%s: recovered the checkpoint of a save that was interrupted", out_dir)
    group.barrier()
    amp_dtype = autocast_dtype(p.precision, device)

    torch.manual_seed(p.seed)
    model = CellLMForPretraining(len(corpus.vocab), cfg)
    frozen_genes = gene_embeddings is not None and p.gene_embeddings == "frozen"
    if gene_embeddings is not None:
        model.encoder.set_gene_embeddings(gene_embeddings, trainable=not frozen_genes)
    start, rows, state = 0, [], None
    if resume and not out_dir.exists():
        log.info("%s: no checkpoint to resume yet, starting at step 0", out_dir)
    if resume and out_dir.exists():
        model, _, saved = load_checkpoint(out_dir, vocab=corpus.vocab, accept_edited_config=accept_edited_config)
        state = load_trainer_state(out_dir)
        if state is None:
            raise InputError(f"{out_dir}: checkpoint has no trainer state to resume from")
        start = int(state["step"])
        conflicts = resume_conflicts(saved, cfg)
        if conflicts:
            raise InputError(
                f"{out_dir}: cannot resume with other options ({'; '.join(conflicts)}); "
                "resume with the checkpoint's own config.json or start a new --out"
            )
        if p.max_steps < start:
            raise InputError(f"{out_dir}: saved at step {start}, beyond max_steps {p.max_steps}; resume with max_steps >= {start}")
        log.info("%s: resuming at step %d of %d", out_dir, start, p.max_steps)
        frozen_genes = bool(state.get("frozen_gene_embeddings", False))  # the table is in the weights now
        model.encoder.gene_embedding.weight.requires_grad_(not frozen_genes)
        if (out_dir / TRAIN_LOG).exists():
            rows = pd.read_csv(out_dir / TRAIN_LOG).to_dict("records")
    model.to(device)
    optimizer = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=p.lr, weight_decay=p.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(p.warmup_steps, p.max_steps))
    if state is not None:
        load_optimizer(optimizer, state["optimizer"], out_dir / TRAINER_STATE)
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])

    setup = StepSetup.from_config(cfg, len(corpus.vocab), device, amp_dtype, group)
    training = _Training(model, optimizer, scheduler, setup, p)
    is_main = group.rank == 0

    def save(step: int) -> None:
        if is_main:
            trainer_state = {
                "step": step,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "frozen_gene_embeddings": frozen_genes,
            }
            save_checkpoint(out_dir, model, corpus.vocab, cfg, trainer_state, rows)
        group.barrier()

    # each rank makes only its own cells' views and padded sub-batches, one step ahead in a background
    # thread (numpy releases the GIL), so preparing a batch overlaps the previous step's compute
    order = BatchOrder(corpus.cells.lengths(), p.batch_size, p.seed, group.rank, group.world_size)

    def prepare(step: int):
        views = make_views(
            corpus.cells,
            order.cells(step),
            corpus.tissue,
            p.seed,
            step,
            p.view_keep,
            p.mask_ratio,
            cfg.tokens,
            drop=p.view_drop,
            bin_noise=p.bin_noise,
        )
        return views, pad_sub_batches(views, setup, pin=torch.device(device).type == "cuda")

    prefetch = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batches")
    upcoming = prefetch.submit(prepare, start) if start < p.max_steps else None
    bar = tqdm(
        range(start, p.max_steps), initial=start, total=p.max_steps, desc="pretrain", unit="step", disable=not (progress and is_main)
    )
    try:
        for step in bar:
            if step > 0 and step % cfg.encoder.feature_redraw_interval == 0:
                # redraws happen between optimizer steps only, seeded by the step (the same on every rank)
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(p.seed * 1_000_003 + step)
                    model.encoder.redraw_random_features()
            began = time.perf_counter()
            views, padded = upcoming.result()
            upcoming = prefetch.submit(prepare, step + 1) if step + 1 < p.max_steps else None
            rows.append(_train_step(training, views, padded, step, began))
            bar.set_postfix(loss=f"{rows[-1]['loss']:.3f}", cells_s=f"{rows[-1]['cells_per_s']:.0f}")
            if p.checkpoint_every and (step + 1) % p.checkpoint_every == 0 and step + 1 < p.max_steps:
                save(step + 1)
    finally:
        prefetch.shutdown(wait=True, cancel_futures=True)
    save(p.max_steps)
    model.eval()
    return out_dir


@dataclass(frozen=True)
class _Training:
    """What an optimizer step updates (model, optimizer, schedule) and the settings it follows."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    setup: StepSetup
    pretrain: PretrainConfig


def _train_step(training: _Training, views, padded, step: int, began: float) -> dict:
    """One optimizer step on this rank's views (`padded`: their sub-batches, made ahead); the row of the training log."""
    model, optimizer, scheduler, p = training.model, training.optimizer, training.scheduler, training.pretrain
    model.train()
    optimizer.zero_grad(set_to_none=True)
    losses = divide_and_conquer_step(model, views, training.setup, padded=padded)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
    optimizer.step()
    scheduler.step()
    seconds = time.perf_counter() - began
    return {
        "step": step + 1,
        **losses,
        "grad_norm": float(grad_norm),
        "lr": scheduler.get_last_lr()[0],
        "cells_per_s": p.batch_size / seconds,
    }
