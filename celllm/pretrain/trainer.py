"""The pretraining loop: batches, views, divide-and-conquer steps, schedule, checkpoints.

Everything random is derived from the seed and the step number (batch order,
views, random-feature redraws) or saved in the checkpoint (model init, torch
random state), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from celllm.checkpoint import TRAIN_LOG, load_checkpoint, load_trainer_state, save_checkpoint
from celllm.config import CellLMConfig
from celllm.errors import InputError
from celllm.io import check_writable, recover_interrupted_swap
from celllm.pretrain.corpus import Corpus
from celllm.pretrain.distributed import SingleProcess, device_for
from celllm.pretrain.dnc import LossWeights, divide_and_conquer_step
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
        conflicts += [f"{section}.{key} {before[key]!r} -> {after[key]!r}" for key in before
                      if key not in RESUMABLE_CHANGES and before[key] != after[key]]
    return conflicts


def batch_indices(n_cells: int, batch_size: int, seed: int, step: int) -> np.ndarray:
    """Cells of one step: a fresh seeded permutation each epoch, last partial batch dropped."""
    steps_per_epoch = n_cells // batch_size
    epoch, position = divmod(step, steps_per_epoch)
    order = np.random.default_rng([seed, epoch]).permutation(n_cells)
    return order[position * batch_size : (position + 1) * batch_size]


def by_length(indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Batch cells sorted by length, so each sub-batch needs little padding.

    The contrastive loss does not depend on the order of cells in the batch.
    """
    return indices[np.argsort(lengths[indices], kind="stable")]


def warmup_cosine(warmup_steps: int, max_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def pretrain(corpus: Corpus, out_dir, cfg: CellLMConfig, resume: bool = False, device: str | None = None, progress: bool = True,
             group: SingleProcess = SingleProcess(), gene_embeddings: torch.Tensor | None = None) -> Path:
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
        log.warning("no cell of the corpus has a tissue label: the tumor/normal objective (weight_tissue %g) is 0 throughout", p.weight_tissue)
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
        model, _, saved = load_checkpoint(out_dir, vocab=corpus.vocab)
        state = load_trainer_state(out_dir)
        if state is None:
            raise InputError(f"{out_dir}: checkpoint has no trainer state to resume from")
        start = int(state["step"])
        conflicts = resume_conflicts(saved, cfg)
        if conflicts:
            raise InputError(f"{out_dir}: cannot resume with other options ({'; '.join(conflicts)}); "
                             "resume with the checkpoint's own config.json or start a new --out")
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
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])

    weights = LossWeights(p.weight_contrastive, p.weight_mlm, p.weight_tissue)
    vocab_size = len(corpus.vocab)
    lengths = corpus.cells.lengths()
    is_main = group.rank == 0

    def save(step: int) -> None:
        if is_main:
            trainer_state = {"step": step, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                             "torch_rng": torch.get_rng_state(), "frozen_gene_embeddings": frozen_genes}
            save_checkpoint(out_dir, model, corpus.vocab, cfg, trainer_state, rows)
        group.barrier()

    bar = tqdm(range(start, p.max_steps), initial=start, total=p.max_steps, desc="pretrain", unit="step", disable=not (progress and is_main))
    for step in bar:
        if step > 0 and step % cfg.encoder.feature_redraw_interval == 0:
            # redraws happen between optimizer steps only, seeded by the step (the same on every rank)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(p.seed * 1_000_003 + step)
                model.encoder.redraw_random_features()
        began = time.perf_counter()
        # every rank builds the same global batch and views, then keeps its shard
        indices = by_length(batch_indices(len(corpus.cells), p.batch_size, p.seed, step), lengths)
        views = make_views(corpus.cells, indices, corpus.tissue, np.random.default_rng([p.seed, step, 1]), p.view_keep, p.mask_ratio, cfg.tokens)
        views = views.cells(np.arange(group.rank, len(indices), group.world_size))
        model.train()
        optimizer.zero_grad(set_to_none=True)
        losses = divide_and_conquer_step(model, views, p.sub_batch_size, vocab_size, cfg.tokens, weights, p.temperature, device, amp_dtype, group,
                                         sub_batch_tokens=p.sub_batch_tokens)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), p.grad_clip)
        optimizer.step()
        scheduler.step()
        seconds = time.perf_counter() - began
        row = {"step": step + 1, **losses, "grad_norm": float(grad_norm), "lr": scheduler.get_last_lr()[0], "cells_per_s": p.batch_size / seconds}
        rows.append(row)
        bar.set_postfix(loss=f"{losses['loss']:.3f}", cells_s=f"{row['cells_per_s']:.0f}")
        if p.checkpoint_every and (step + 1) % p.checkpoint_every == 0 and step + 1 < p.max_steps:
            save(step + 1)
    save(p.max_steps)
    model.eval()
    return out_dir
