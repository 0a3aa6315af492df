"""CellLM: frozen pretrained [CLS] embeddings with a trained linear head (a linear probe).

The head is multinomial logistic regression on standardised embeddings; its
regularisation strength is chosen on the validation split (macro F1), never
on test.
"""

import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks.registry import register
from celllm.embed import CellEmbedder

C_GRID = (0.01, 0.1, 1.0, 10.0)


@register(
    "celllm_probe",
    kind="celllm",
    tasks=("annotation",),
    summary="CellLM frozen [CLS] embedding + logistic-regression head (C picked on validation)",
    reference="Zhao, Zhang & Nie 2023, arXiv 2306.04371",
    needs_checkpoint=True,
)
class CellLMLinearProbe:
    def __init__(self, seed, context):
        torch.set_num_threads(context.threads)
        self.seed, self.model = seed, None
        self.embedder = CellEmbedder(context.checkpoint, device=context.device)

    def _embed(self, data):
        return self.embedder(data.adata)[0]

    def _head(self, C):
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000, random_state=self.seed))

    def fit(self, train, val):
        x_train = self._embed(train)
        best_score, best_C = -1.0, C_GRID[0]
        if len(val):
            x_val = self._embed(val)
            for C in C_GRID:
                score = f1_score(val.labels, self._head(C).fit(x_train, train.labels).predict(x_val), average="macro")
                if score > best_score:
                    best_score, best_C = score, C
        self.model = self._head(best_C).fit(x_train, train.labels)

    def predict(self, data):
        return self.model.predict(self._embed(data))
