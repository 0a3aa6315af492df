"""The divide-and-conquer contrastive step (gradient caching, Gao et al. 2021).

A large batch gives the contrastive loss many negatives but does not fit in
memory with gradients. The step therefore:
  1. embeds every sub-batch without gradient;
  2. takes the contrastive loss over the whole batch (gathered from every
     data-parallel rank) and its gradient with respect to the embeddings only;
  3. re-runs each sub-batch with gradient and back-propagates the cached
     embedding gradients together with the sub-batch's own per-cell losses
     (masked bins, tissue), so a step costs one extra forward pass.
The parameter gradients equal those of one full-batch step, while peak memory
is that of one sub-batch. Exactness needs a cell's forward pass to depend on
that cell alone: attention ignores padding (celllm.model.attention), dropout
masks are functions of per-view seeds (celllm.model.dropout), random features
change only between optimizer steps, and any other random state is replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from celllm.pretrain.distributed import SingleProcess
from celllm.pretrain.objectives import IGNORE, ViewBatch, at_least_float32, nt_xent, per_sequence_loss_sums
from celllm.pretrain.precision import autocast
from celllm.tokens import TokenConfig, padded_length


@dataclass(frozen=True)
class LossWeights:
    contrastive: float = 1.0
    mlm: float = 1.0
    tissue: float = 1.0

    def combine(self, contrastive, mlm, tissue):
        """The weighted total of the three losses (tensors or floats)."""
        return self.contrastive * contrastive + self.mlm * mlm + self.tissue * tissue


class RandomState:
    """Snapshot of torch's CPU and CUDA random state, to replay any stateful randomness."""

    def __init__(self):
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def plan_sub_batches(views: ViewBatch, sub_batch_size: int, max_tokens: int = 0) -> list[tuple[int, int]]:
    """Cell ranges [start, stop) of a step's forward passes, in batch order.

    Each pass holds at most `sub_batch_size` cells and, when `max_tokens` > 0, at
    most `max_tokens` padded tokens (both views, [CLS] included; one cell alone
    may exceed it). With a cell count alone, the pass that holds the longest
    cells grows with the batch; a token budget keeps peak memory flat. Any
    partition gives the same gradients.
    """
    lengths = views.cell_lengths().tolist()
    ranges, start = [], 0
    while start < views.n_cells:
        stop, longest = start + 1, lengths[start]
        while stop < views.n_cells and stop - start < sub_batch_size:
            longer = max(longest, lengths[stop])
            if max_tokens and 2 * (stop + 1 - start) * padded_length(longer) > max_tokens:
                break
            stop, longest = stop + 1, longer
        ranges.append((start, stop))
        start = stop
    return ranges


def pad_sub_batches(
    views: ViewBatch, sub_batch_size: int, vocab_size: int, cfg: TokenConfig, sub_batch_tokens: int = 0, pin: bool = False
) -> list[dict[str, torch.Tensor]]:
    """The padded tensors of every forward pass of a step (`plan_sub_batches`); `pin` puts them in
    page-locked memory for an asynchronous copy to a GPU. The trainer makes them one step ahead."""
    chunks = [views.chunk(a, b, vocab_size, cfg) for a, b in plan_sub_batches(views, sub_batch_size, sub_batch_tokens)]
    return [{k: v.pin_memory() for k, v in chunk.items()} for chunk in chunks] if pin else chunks


def _to(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _forward(model, batch, amp_dtype):
    """Model outputs for a padded chunk, under bf16/fp16 autocast when `amp_dtype` is set."""
    with autocast(batch["gene_ids"].device.type, amp_dtype):
        return model(batch["gene_ids"], batch["bins"], batch["mask"], batch["seeds"])


def full_batch_step(
    model, views: ViewBatch, vocab_size: int, cfg: TokenConfig, weights: LossWeights, temperature: float, device="cpu", amp_dtype=None
) -> dict[str, float]:
    """Reference step: one forward over the whole batch, then backward. Memory grows with the batch."""
    batch = _to(views.chunk(0, views.n_cells, vocab_size, cfg), device)
    outputs = _forward(model, batch, amp_dtype)
    contrastive = nt_xent(outputs["z"], temperature)
    sums = per_sequence_loss_sums(outputs, batch)
    mlm = sums["mlm_sum"] / sums["mlm_count"].clamp(min=1)
    tissue = sums["tissue_sum"] / sums["tissue_count"].clamp(min=1)
    total = weights.combine(contrastive, mlm, tissue)
    total.backward()
    return {"loss": total.item(), "contrastive": contrastive.item(), "mlm": mlm.item(), "tissue": tissue.item()}


def divide_and_conquer_step(
    model,
    views: ViewBatch,
    sub_batch_size: int,
    vocab_size: int,
    cfg: TokenConfig,
    weights: LossWeights,
    temperature: float,
    device="cpu",
    amp_dtype=None,
    group: SingleProcess = SingleProcess(),
    sub_batch_tokens: int = 0,
    padded: list | None = None,
) -> dict[str, float]:
    """Accumulate the gradients of the full-batch loss into `model`, one sub-batch at a time.

    `views` is this rank's shard of the global batch; sub-batches follow
    `plan_sub_batches` (`padded`: their tensors, made ahead by `pad_sub_batches`).
    Returns the loss values of the whole (global) batch. The caller zeroes
    gradients before and steps the optimizer after.
    """
    padded = padded if padded is not None else pad_sub_batches(views, sub_batch_size, vocab_size, cfg, sub_batch_tokens)
    chunks = [_to(chunk, device) for chunk in padded]

    # 1. embeddings of every sub-batch, no graph kept; remember each one's random state
    states, embeddings = [], []
    with torch.no_grad():
        for batch in chunks:
            states.append(RandomState())
            embeddings.append(at_least_float32(_forward(model, batch, amp_dtype)["z"]))
    local = torch.cat(embeddings)

    # 2. contrastive loss over the global batch; gradient w.r.t. this rank's embeddings only
    z = group.gather(local).detach().requires_grad_(True)
    contrastive = nt_xent(z, temperature)
    (embedding_grad,) = torch.autograd.grad(weights.contrastive * contrastive, z)
    start = group.rank * local.shape[0]  # every rank holds the same number of views
    embedding_grad = embedding_grad[start : start + local.shape[0]]
    mlm_count = group.sum(sum((b["mlm_targets"] != IGNORE).sum() for b in chunks)).clamp(min=1)
    tissue_count = group.sum(sum((b["tissue"] != IGNORE).sum() for b in chunks)).clamp(min=1)

    # 3. re-run each sub-batch with gradient under the same random state
    after = RandomState()
    mlm_total = torch.zeros((), device=device, dtype=local.dtype)
    tissue_total = torch.zeros((), device=device, dtype=local.dtype)
    offset = 0
    for batch, state in zip(chunks, states):
        state.restore()
        outputs = _forward(model, batch, amp_dtype)
        n = outputs["z"].shape[0]
        sums = per_sequence_loss_sums(outputs, batch)
        mlm = sums["mlm_sum"] / mlm_count
        tissue = sums["tissue_sum"] / tissue_count
        surrogate = (
            (at_least_float32(outputs["z"]) * embedding_grad[offset : offset + n]).sum() + weights.mlm * mlm + weights.tissue * tissue
        )
        surrogate.backward()
        mlm_total += mlm.detach()
        tissue_total += tissue.detach()
        offset += n
    after.restore()  # continue the random stream as if each sub-batch ran once
    group.sum_gradients(model)

    mlm_value, tissue_value = group.sum(mlm_total).item(), group.sum(tissue_total).item()
    total = weights.combine(contrastive.item(), mlm_value, tissue_value)
    return {"loss": total, "contrastive": contrastive.item(), "mlm": mlm_value, "tissue": tissue_value}
