"""CellLM fine-tuned as in the released code: the last Performer layer, the
final norm and a classification head are trained, everything else stays frozen;
the loss is class-weighted cross-entropy (rare cell types count as much as
common ones).

Unlike the released script, which keeps the epoch that scores best on the
split it reports, the epoch here is chosen on the validation split (macro F1)
and training stops early when validation stops improving.
Options (task config `options: {celllm_finetune: {...}}`): epochs, lr,
batch_size, patience.
"""

import copy

import numpy as np
import torch
from sklearn.metrics import f1_score
from torch import nn

from benchmarks.registry import check_options, register
from celllm.checkpoint import load_checkpoint
from celllm.embed import embed_tokens
from celllm.tokens import pad_batch, tokenize

DEFAULTS = {"epochs": 20, "lr": 1e-4, "batch_size": 32, "patience": 4}


@register(
    "celllm_finetune",
    kind="celllm", colour="#3182bd",
    tasks=("annotation", "drug_sensitivity"),
    summary="this project's CellLM in the authors' fine-tuning recipe: last Performer layer + final norm + MLP head, class-weighted CE (epoch picked on validation, not test)",
    reference="Zhao, Zhang & Nie 2023; OpenBioMed configs/ctc/cellLM.json",
    pretraining="pretrained",
    options=DEFAULTS,
)
class CellLMFineTune:
    def __init__(self, seed, context):
        self.seed, self.context = seed, context
        self.options = check_options("a fine-tuned CellLM", DEFAULTS, context.options or {})
        torch.set_num_threads(context.threads)
        torch.manual_seed(seed)
        model, self.vocab, self.cfg = load_checkpoint(context.checkpoint)
        self.encoder = model.encoder.to(context.device)
        self.trainable = [*self.encoder.layers[-1].parameters(), *self.encoder.norm.parameters()]
        for parameter in self.encoder.parameters():
            parameter.requires_grad_(False)
        for parameter in self.trainable:
            parameter.requires_grad_(True)

    def _tokens(self, data):
        return tokenize(data.adata.X, data.adata.var_names, self.vocab, self.cfg.tokens)

    def _logits(self, cells, rows):
        batch = pad_batch([cells.cell(int(i)) for i in rows], self.encoder.n_genes, self.cfg.tokens)
        batch = {k: v.to(self.context.device) for k, v in batch.items()}
        return self.head(self.encoder.embed_last_layers(batch["gene_ids"], batch["bins"], batch["mask"]))

    @torch.no_grad()
    def _predict_proba(self, cells):
        # in eval mode the partially trainable encoder embeds exactly like the frozen one, so reuse its batching
        embeddings = torch.from_numpy(embed_tokens(self.encoder, cells, self.cfg.tokens, device=self.context.device)).to(self.context.device)
        self.head.eval()
        return torch.softmax(self.head(embeddings), dim=1).float().cpu().numpy()

    def fit(self, train, val):
        self.classes_, y = np.unique(train.labels, return_inverse=True)
        dim = self.encoder.cfg.dim
        self.head = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(0.1), nn.Linear(dim, len(self.classes_))).to(self.context.device)
        counts = np.bincount(y, minlength=len(self.classes_))
        weight = torch.tensor(len(y) / (len(counts) * counts), dtype=torch.float32, device=self.context.device)
        loss_fn = nn.CrossEntropyLoss(weight=weight)
        optimizer = torch.optim.Adam([*self.trainable, *self.head.parameters()], lr=self.options["lr"])
        cells, val_cells = self._tokens(train), (self._tokens(val) if len(val) else None)
        targets = torch.as_tensor(y, device=self.context.device)
        rng = np.random.default_rng(self.seed)
        best, best_score, stale = None, -1.0, 0
        for _ in range(self.options["epochs"]):
            self.encoder.train(), self.head.train()
            order = rng.permutation(len(cells))
            for start in range(0, len(order), self.options["batch_size"]):
                rows = order[start : start + self.options["batch_size"]]
                optimizer.zero_grad(set_to_none=True)
                loss_fn(self._logits(cells, rows), targets[rows]).backward()
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
