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

The objectives are the registered ones (celllm.pretrain.objectives.OBJECTIVES):
step 2 covers every objective with a `batch_loss`, step 3 every one with a
`loss_sum`. What a step needs besides the model and its cells is a `StepSetup`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from celllm.pretrain.distributed import SingleProcess
from celllm.pretrain.objectives import LossWeights, ViewBatch, at_least_float32, objectives
from celllm.pretrain.precision import autocast
from celllm.tokens import TokenConfig, padded_length


@dataclass(frozen=True)
class StepSetup:
    """What every training step of a run shares, whatever the model: the token layout, the objectives'
    weights and settings, how a step is cut into forward passes, and where it runs."""

    vocab_size: int  # genes of the vocabulary ([CLS] and PAD ids follow them)
    tokens: TokenConfig
    weights: LossWeights = field(default_factory=LossWeights)
    temperature: float = 0.5  # of the contrastive loss (NT-Xent)
    sub_batch_size: int = 32  # cells per forward pass of the divide-and-conquer step
    sub_batch_tokens: int = 0  # if > 0, padded tokens per forward pass at most (`plan_sub_batches`)
    device: str | torch.device = "cpu"
    amp_dtype: torch.dtype | None = None  # bf16/fp16 autocast, or None
    group: SingleProcess = field(default_factory=SingleProcess)  # the data-parallel ranks (celllm.pretrain.distributed)

    @classmethod
    def from_config(cls, cfg, vocab_size: int, device="cpu", amp_dtype=None, group: SingleProcess | None = None) -> StepSetup:
        """The setup a CellLMConfig (celllm.config) gives: its tokens, and from its `pretrain` section the
        objectives' weights (`LossWeights.from_config`), temperature and sub-batch sizes."""
        p = cfg.pretrain
        return cls(
            vocab_size,
            cfg.tokens,
            LossWeights.from_config(p),
            p.temperature,
            p.sub_batch_size,
            p.sub_batch_tokens,
            device,
            amp_dtype,
            group if group is not None else SingleProcess(),
        )


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


def pad_sub_batches(views: ViewBatch, setup: StepSetup, pin: bool = False) -> list[dict[str, torch.Tensor]]:
    """The padded tensors of every forward pass of a step (`plan_sub_batches`); `pin` puts them in
    page-locked memory for an asynchronous copy to a GPU. The trainer makes them one step ahead."""
    chunks = [
        views.chunk(a, b, setup.vocab_size, setup.tokens) for a, b in plan_sub_batches(views, setup.sub_batch_size, setup.sub_batch_tokens)
    ]
    return [{k: v.pin_memory() for k, v in chunk.items()} for chunk in chunks] if pin else chunks


def _to(batch: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _forward(model, batch, amp_dtype):
    """Model outputs for a padded chunk, under bf16/fp16 autocast when `amp_dtype` is set."""
    with autocast(batch["gene_ids"].device.type, amp_dtype):
        return model(batch["gene_ids"], batch["bins"], batch["mask"], batch["seeds"])


def full_batch_step(model, views: ViewBatch, setup: StepSetup) -> dict[str, float]:
    """Reference step: one forward over the whole batch, then backward. Memory grows with the batch."""
    batch = _to(views.chunk(0, views.n_cells, setup.vocab_size, setup.tokens), setup.device)
    outputs = _forward(model, batch, setup.amp_dtype)
    losses = {}
    for o in objectives():
        output = outputs[o.output]
        losses[o.name] = o.batch_loss(output, setup) if o.batch_loss else o.loss_sum(output, batch) / o.count(batch).clamp(min=1)
    total = setup.weights.combine(losses)
    total.backward()
    return {"loss": total.item(), **{name: loss.item() for name, loss in losses.items()}}


def divide_and_conquer_step(model, views: ViewBatch, setup: StepSetup, padded: list | None = None) -> dict[str, float]:
    """Accumulate the gradients of the full-batch loss into `model`, one sub-batch at a time.

    `views` is this rank's shard of the global batch; sub-batches follow
    `plan_sub_batches` (`padded`: their tensors, made ahead by `pad_sub_batches`).
    Returns the loss values of the whole (global) batch: the weighted total, then
    each objective's. The caller zeroes gradients before and steps the optimizer after.
    """
    group, weights = setup.group, setup.weights
    padded = padded if padded is not None else pad_sub_batches(views, setup)
    chunks = [_to(chunk, setup.device) for chunk in padded]
    batch_wide = [o for o in objectives() if o.batch_loss]

    # 1. outputs of the batch-wide objectives' heads (the contrastive embeddings) for every
    # sub-batch, no graph kept; remember each sub-batch's random state
    states, cached = [], {o.name: [] for o in batch_wide}
    with torch.no_grad():
        for batch in chunks:
            states.append(RandomState())
            outputs = _forward(model, batch, setup.amp_dtype)
            for o in batch_wide:
                cached[o.name].append(at_least_float32(outputs[o.output]))

    # 2. each batch-wide loss over the global batch; its gradient w.r.t. this rank's outputs only
    losses, output_grads = {}, {}
    for o in batch_wide:
        local = torch.cat(cached.pop(o.name))
        gathered = group.gather(local).detach().requires_grad_(True)
        losses[o.name] = o.batch_loss(gathered, setup)
        (grad,) = torch.autograd.grad(weights[o.name] * losses[o.name], gathered)
        start = group.rank * local.shape[0]  # every rank holds the same number of views
        output_grads[o.name] = grad[start : start + local.shape[0]]
    counts = {o.name: group.sum(sum(o.count(b) for b in chunks)).clamp(min=1) for o in objectives() if o.loss_sum}

    # 3. re-run each sub-batch with gradient under the same random state
    after = RandomState()
    totals, offset = {}, 0
    for batch, state in zip(chunks, states):
        state.restore()
        outputs = _forward(model, batch, setup.amp_dtype)
        n = batch["mask"].shape[0]
        terms = []
        for o in objectives():
            output = outputs[o.output]
            if o.batch_loss:
                terms.append((at_least_float32(output) * output_grads[o.name][offset : offset + n]).sum())
            else:
                loss = o.loss_sum(output, batch) / counts[o.name]
                terms.append(weights[o.name] * loss)
                totals[o.name] = totals.get(o.name, torch.zeros_like(loss)) + loss.detach()
        surrogate = terms[0]
        for term in terms[1:]:
            surrogate = surrogate + term
        surrogate.backward()
        offset += n
    after.restore()  # continue the random stream as if each sub-batch ran once
    group.sum_gradients(model)

    values = {o.name: (losses[o.name] if o.batch_loss else group.sum(totals[o.name])).item() for o in objectives()}
    return {"loss": weights.combine(values), **values}
