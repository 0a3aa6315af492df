"""The pretraining objectives are one registry (celllm.pretrain.objectives.OBJECTIVES): the model's
heads, the steps' losses and weights, the training log's columns, the loss figure and the ablations
all follow it, so a new objective is one registration and its weight option."""

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from benchmarks.figures.pretraining import panels, plot_loss_curves
from benchmarks.pretrainings import ABLATIONS
from celllm.config import CellLMConfig, PretrainConfig
from celllm.options import option
from celllm.pretrain.corpus import load_corpus
from celllm.pretrain.dnc import StepSetup, divide_and_conquer_step, full_batch_step
from celllm.pretrain.model import CellLMForPretraining
from celllm.pretrain.objectives import OBJECTIVES, LossWeights, Objective, make_views, objective, objectives
from celllm.pretrain.trainer import pretrain
from tests.fixtures.data import TINY_MODEL


def test_log_figure_weights_heads_and_ablations_follow_the_registry(checkpoint, tiny_config):
    names = [o.name for o in objectives()]
    assert names == ["contrastive", "mlm", "tissue"]
    columns = list(pd.read_csv(checkpoint / "train_log.csv").columns)
    assert columns == ["step", "loss", *names, "grad_norm", "lr", "cells_per_s"]
    assert list(panels()) == names
    # every objective's weight is a PretrainConfig option, and every weight option is an objective's
    weight_options = {f.name for f in fields(PretrainConfig) if f.name.startswith("weight_") and f.name != "weight_decay"}
    assert {o.weight_key for o in objectives()} == weight_options
    cfg = tiny_config.with_pretrain(weight_contrastive=0.25, weight_mlm=2.0, weight_tissue=0.0)
    assert dict(StepSetup.from_config(cfg, 30).weights.items()) == {"contrastive": 0.25, "mlm": 2.0, "tissue": 0.0}
    # the checkpoint holds the encoder and one head per objective, under the objective's head name
    prefixes = {key.split(".")[0] for key in load_file(str(checkpoint / "model.safetensors"))}
    assert prefixes == {"encoder", *(o.head_name for o in objectives())}
    assert ABLATIONS["no_contrastive"] == {objective("contrastive").weight_key: 0.0}
    with pytest.raises(ValueError, match="unknown pretraining objective 'nope'"):
        objective("nope")
    with pytest.raises(ValueError, match="no pretraining objective named nope"):
        LossWeights(nope=1.0)


@dataclass(frozen=True)
class ToyPretrainConfig(PretrainConfig):
    """PretrainConfig with the weight option a new objective adds."""

    weight_length: float = option(0.5, low=0.0)


def _length_loss_sum(prediction: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Squared error of each view's token count (a tenth of it), summed over the chunk's views."""
    return ((prediction.squeeze(-1) - batch["mask"].sum(1) / 10) ** 2).sum()


TOY = Objective(
    name="length",
    title="tokens per view",
    weight_key="weight_length",
    head_name="length_head",
    head=lambda cfg: nn.Linear(cfg.encoder.dim, 1),
    reads="cell",
    output="length",
    loss_sum=_length_loss_sum,
    count=lambda batch: torch.tensor(batch["mask"].shape[0]),
)


@pytest.fixture
def toy_objective(monkeypatch):
    monkeypatch.setitem(OBJECTIVES, TOY.name, TOY)
    return TOY


def test_a_registered_objective_is_trained_logged_and_drawn(toy_objective, corpus_path, tmp_path):
    base = CellLMConfig.from_dict(TINY_MODEL)
    cfg = CellLMConfig(base.encoder, base.tokens, ToyPretrainConfig(**{**base.pretrain.to_dict(), "sub_batch_size": 3}))
    corpus = load_corpus([corpus_path], cfg.tokens)

    # its gradients are exact under divide and conquer, like every objective's
    torch.manual_seed(0)
    model = CellLMForPretraining(len(corpus.vocab), cfg).to(torch.float64).train()
    views = make_views(corpus.cells, np.arange(8), corpus.tissue, 0, 0, 0.8, 0.3, cfg.tokens)
    setup = StepSetup.from_config(cfg, len(corpus.vocab))
    assert setup.weights["length"] == 0.5
    full = full_batch_step(model, views, setup)
    reference = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    dnc = divide_and_conquer_step(model, views, setup)
    assert reference["length_head.weight"].abs().sum() > 0
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, reference[name], rtol=1e-9, atol=1e-12, msg=lambda m: f"{name}: {m}")
    assert list(dnc) == ["loss", "contrastive", "mlm", "tissue", "length"] and dnc["length"] == pytest.approx(full["length"])

    # and the trainer logs it, saves its head, and the loss figure draws it
    out = pretrain(corpus, tmp_path / "toy", cfg, progress=False)
    log = pd.read_csv(out / "train_log.csv")
    assert list(log.columns) == ["step", "loss", "contrastive", "mlm", "tissue", "length", "grad_norm", "lr", "cells_per_s"]
    assert (log["length"] > 0).all()
    assert "length_head.weight" in load_file(str(out / "model.safetensors"))
    assert list(panels()) == ["contrastive", "mlm", "tissue", "length"]
    plot_loss_curves(out / "train_log.csv", tmp_path / "losses.png")
    assert (tmp_path / "losses.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no pretrain option weight_length"):
        LossWeights.from_config(base.pretrain)  # registered without its option


def test_an_objective_gives_one_kind_of_loss():
    with pytest.raises(ValueError, match="either batch_loss, or loss_sum and count"):
        Objective("x", "x", "weight_x", "x_head", nn.Identity, "cell", "x")
    with pytest.raises(ValueError, match="reads must be"):
        Objective("x", "x", "weight_x", "x_head", nn.Identity, "genes", "x", loss_sum=_length_loss_sum, count=len)
