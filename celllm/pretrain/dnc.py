"""The divide-and-conquer contrastive step (gradient caching, Gao et al. 2021).

A large batch gives the contrastive loss many negatives but does not fit in
memory with gradients. The step therefore:
  1. embeds every sub-batch without gradient;
  2. takes the contrastive loss over the whole batch and its gradient with
     respect to the embeddings only;
  3. re-runs each sub-batch with gradient, replaying the random state of its
     first pass, and back-propagates the cached embedding gradients together
     with the sub-batch's own per-cell losses (masked bins, tissue).
The parameter gradients equal those of one full-batch step, while peak memory
is that of one sub-batch. Exactness needs a cell's embedding to depend on that
cell alone (see celllm.model.attention) and the same random state in both passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from celllm.pretrain.objectives import ViewBatch, nt_xent, per_sequence_loss_sums
from celllm.tokens import TokenConfig


@dataclass(frozen=True)
class LossWeights:
    contrastive: float = 1.0
    mlm: float = 1.0
    tissue: float = 1.0


class RandomState:
    """Snapshot of torch's CPU and CUDA random state, to replay dropout exactly."""

    def __init__(self):
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def _chunks(n_cells: int, size: int):
    return [(start, min(start + size, n_cells)) for start in range(0, n_cells, size)]


def _to(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _combine(contrastive, sums, weights: LossWeights):
    mlm = sums["mlm_sum"] / sums["mlm_count"].clamp(min=1)
    tissue = sums["tissue_sum"] / sums["tissue_count"].clamp(min=1)
    total = weights.contrastive * contrastive + weights.mlm * mlm + weights.tissue * tissue
    return total, mlm, tissue


def full_batch_step(model, views: ViewBatch, vocab_size: int, cfg: TokenConfig, weights: LossWeights, temperature: float, device="cpu") -> dict[str, float]:
    """Reference step: one forward over the whole batch, then backward. Memory grows with the batch."""
    batch = _to(views.chunk(0, views.n_cells, vocab_size, cfg), device)
    outputs = model(batch["gene_ids"], batch["bins"], batch["mask"])
    contrastive = nt_xent(outputs["z"], temperature)
    total, mlm, tissue = _combine(contrastive, per_sequence_loss_sums(outputs, batch), weights)
    total.backward()
    return {"loss": total.item(), "contrastive": contrastive.item(), "mlm": mlm.item(), "tissue": tissue.item()}


def divide_and_conquer_step(
    model, views: ViewBatch, sub_batch_size: int, vocab_size: int, cfg: TokenConfig, weights: LossWeights, temperature: float, device="cpu"
) -> dict[str, float]:
    """Accumulate the gradients of the full-batch loss into `model`, one sub-batch at a time.

    Returns the loss values of the step. The caller zeroes gradients before and
    steps the optimizer after.
    """
    chunks = [_to(views.chunk(a, b, vocab_size, cfg), device) for a, b in _chunks(views.n_cells, sub_batch_size)]

    # 1. embeddings of every sub-batch, no graph kept; remember each one's random state
    states, embeddings = [], []
    with torch.no_grad():
        for batch in chunks:
            states.append(RandomState())
            embeddings.append(model(batch["gene_ids"], batch["bins"], batch["mask"])["z"])

    # 2. contrastive loss over the whole batch; gradient w.r.t. the embeddings only
    z = torch.cat(embeddings).detach().requires_grad_(True)
    contrastive = nt_xent(z, temperature)
    (embedding_grad,) = torch.autograd.grad(weights.contrastive * contrastive, z)
    counts = {
        "mlm_count": sum((b["mlm_targets"] != -100).sum() for b in chunks).clamp(min=1),
        "tissue_count": sum((b["tissue"] != -100).sum() for b in chunks).clamp(min=1),
    }

    # 3. re-run each sub-batch with gradient under the same random state
    after = RandomState()
    mlm_total = tissue_total = 0.0
    offset = 0
    for batch, state in zip(chunks, states):
        state.restore()
        outputs = model(batch["gene_ids"], batch["bins"], batch["mask"])
        n = outputs["z"].shape[0]
        sums = per_sequence_loss_sums(outputs, batch)
        mlm = sums["mlm_sum"] / counts["mlm_count"]
        tissue = sums["tissue_sum"] / counts["tissue_count"]
        surrogate = (outputs["z"] * embedding_grad[offset : offset + n]).sum() + weights.mlm * mlm + weights.tissue * tissue
        surrogate.backward()
        mlm_total += mlm.item()
        tissue_total += tissue.item()
        offset += n
    after.restore()  # continue the random stream as if each sub-batch ran once

    total = weights.contrastive * contrastive.item() + weights.mlm * mlm_total + weights.tissue * tissue_total
    return {"loss": total, "contrastive": contrastive.item(), "mlm": mlm_total, "tissue": tissue_total}
