"""CellLM fine-tuned as in the released code (OpenBioMed `tasks/cell_task/ctc.py`,
`models/task_model/ctc_model.py`, `configs/ctc/cellLM.json`): the last Performer
layer, the final norm and the classification head are trained, everything else
stays frozen; Adam; cross-entropy weighted per class by (1 - n_c / n)^2.

The released head does not read the [CLS] embedding: a 1 x dim convolution turns
every token's final state into one number (ReLU), the numbers are placed in a
vector indexed by gene id (n_genes + 1 entries, the last one [CLS]'s; genes a
cell does not express stay 0), and an MLP (512, 128, dropout 0) classifies that
vector. A [CLS]-only head (this model until issue 22) barely fits the demo
checkpoint's [CLS], which varies little between cells, and predicted two or three
classes at the majority's accuracy.

Unlike the released script, which keeps the epoch that scores best on the
split it reports, the epoch here is chosen on the validation split (macro F1)
and training stops early when validation stops improving.
Options (task config `options: {celllm_finetune: {...}}`): epochs, lr,
batch_size, patience.
"""

import copy
from itertools import pairwise

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from benchmarks.registry import register
from celllm.checkpoint import load_encoder
from celllm.embed import DEFAULT_BATCH, batches
from celllm.errors import InputError
from celllm.released import RELEASED_BATCH
from celllm.tokens import pad_ragged, tokenize

DEFAULTS = {"epochs": 20, "lr": 1e-4, "batch_size": 32, "patience": 4}
HIDDEN = (512, 128)  # the released head's hidden sizes (configs/ctc/cellLM.json, pred_head; dropout 0)


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """The released weights: (1 - share of the class)^2, so a rare class weighs up to 1 and a common one less."""
    counts = np.bincount(y, minlength=n_classes)
    return (1.0 - counts / counts.sum()) ** 2


class GeneStateHead(nn.Module):
    """The released classification head over every token's final state (see the module docstring)."""

    def __init__(self, dim: int, n_genes: int, n_classes: int):
        super().__init__()
        self.n_genes = n_genes
        self.token_score = nn.Linear(dim, 1)  # the released Conv2d(1, 1, (1, dim)): one number per token
        layers = []  # Linear, then ReLU + Linear: the released leading ReLU is a no-op on ReLU'd scores
        for width, out in pairwise((n_genes + 1, *HIDDEN, n_classes)):
            layers += [*([nn.ReLU()] if layers else []), nn.Linear(width, out)]
        self.mlp = nn.Sequential(*layers)

    def forward(self, states: torch.Tensor, gene_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = torch.relu(self.token_score(states).squeeze(-1))
        cells, positions = mask.nonzero(as_tuple=True)
        # a gene occurs once per cell, [CLS] (gene id n_genes) once: each entry is written at most once
        by_gene = scores.new_zeros(len(states), self.n_genes + 1).index_put((cells, gene_ids[cells, positions]), scores[cells, positions])
        return self.mlp(by_gene)


@register(
    "celllm_finetune",
    kind="celllm",
    colour="#3182bd",
    tasks=("annotation", "drug_sensitivity"),
    summary="this project's CellLM in the authors' fine-tuning recipe: last Performer layer + final norm + their head over every gene's state, class-weighted CE (epoch picked on validation, not test)",
    reference="Zhao, Zhang & Nie 2023; OpenBioMed configs/ctc/cellLM.json",
    pretraining="pretrained",
    options=DEFAULTS,
)
class CellLMFineTune:
    def __init__(self, seed, context):
        self.seed, self.context = seed, context
        self.options = {**DEFAULTS, **(context.options or {})}  # checked by the registry (ModelSpec.resolve_options)
        torch.set_num_threads(context.threads)
        torch.manual_seed(seed)
        self.encoder, self.vocab, self.cfg = load_encoder(context.checkpoint)
        self.encoder = self.encoder.to(context.device)
        self.trainable = [*self.encoder.layers[-1].parameters(), *self.encoder.norm.parameters()]
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)
        for parameter in self.trainable:
            parameter.requires_grad_(True)

    def _tokens(self, data):
        return tokenize(data.adata.X, data.adata.var_names, self.vocab, self.cfg.tokens)

    def _logits(self, cells, rows, length: int = 0):
        part = cells.select(rows)
        batch = pad_ragged(part.indptr, part.gene_ids, part.bins, self.encoder.n_genes, self.cfg.tokens, length=length)
        gene_ids, bins, mask = (batch[k].to(self.context.device) for k in ("gene_ids", "bins", "mask"))
        encoder, split = self.encoder, len(self.encoder.layers) - 1
        with torch.no_grad():  # the frozen layers need no graph
            x, layer_mask = encoder.layer_inputs(gene_ids, bins, mask)
            x = encoder.run_layers(x, layer_mask, 0, split)
        states = encoder.norm(encoder.run_layers(x, layer_mask, split))[:, : gene_ids.shape[1]]
        return self.head(states, gene_ids, mask)

    @torch.no_grad()
    def _predict_proba(self, cells):
        self.encoder.eval(), self.head.eval()
        proba = np.empty((len(cells), len(self.classes_)), dtype=np.float32)
        released = self.encoder.cfg.attention == "released"  # batches as `celllm embed` cuts them
        for rows, padded, _ in batches(cells.lengths(), RELEASED_BATCH if released else DEFAULT_BATCH, ordered=released):
            proba[rows] = torch.softmax(self._logits(cells, rows, padded).float(), dim=1).cpu().numpy()
        if not np.isfinite(proba).all():  # never score a model whose weights are no longer numbers
            raise InputError(
                f"fine-tuned CellLM: non-finite predictions (lr {self.options['lr']}): the training diverged; lower the option 'lr'"
            )
        return proba

    def fit(self, train, val):
        self.classes_, y = np.unique(train.labels, return_inverse=True)
        if len(self.classes_) < 2:
            raise InputError(f"fine-tuned CellLM: the training cells have one class only ({self.classes_[0]})")
        torch.manual_seed(self.seed)  # the head's initialisation
        self.head = GeneStateHead(self.encoder.cfg.dim, self.encoder.n_genes, len(self.classes_)).to(self.context.device)
        weight = torch.tensor(class_weights(y, len(self.classes_)), dtype=torch.float32, device=self.context.device)
        loss_fn = nn.CrossEntropyLoss(weight=weight)
        optimizer = torch.optim.Adam([*self.trainable, *self.head.parameters()], lr=self.options["lr"])
        cells, val_cells = self._tokens(train), (self._tokens(val) if len(val) else None)
        targets = torch.as_tensor(y, device=self.context.device)
        rng = np.random.default_rng(self.seed)
        best, best_score, stale = None, -1.0, 0
        for epoch in range(self.options["epochs"]):
            self.encoder.train(), self.head.train()
            order = rng.permutation(len(cells))
            for step, start in enumerate(range(0, len(order), self.options["batch_size"])):
                rows = order[start : start + self.options["batch_size"]]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(self._logits(cells, rows), targets[rows])
                if not torch.isfinite(loss):  # a diverged run must not become a result
                    raise InputError(
                        f"fine-tuned CellLM: the loss is {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                        f"(lr {self.options['lr']}): the training diverged; lower the option 'lr'"
                    )
                loss.backward()
                optimizer.step()
            if val_cells is None:
                continue
            predicted = self.classes_[self._predict_proba(val_cells).argmax(axis=1)]
            score = f1_score(val.labels, predicted, average="macro")
            if score > best_score:
                best_score, stale = score, 0
                best = copy.deepcopy((self.encoder.layers[-1].state_dict(), self.encoder.norm.state_dict(), self.head.state_dict()))
            else:
                stale += 1
                if stale >= self.options["patience"]:
                    break
        if best is not None:
            self.encoder.layers[-1].load_state_dict(best[0])
            self.encoder.norm.load_state_dict(best[1])
            self.head.load_state_dict(best[2])

    def predict_proba(self, data):
        return self._predict_proba(self._tokens(data))

    def predict(self, data):
        return self.classes_[self.predict_proba(data).argmax(axis=1)]
