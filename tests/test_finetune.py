"""Fine-tuned CellLM (benchmarks/models/celllm_finetune.py, the released recipe) on an imbalanced
dataset learns every class instead of settling on a few (issue 22, item 4); a learning rate that
is no positive number is refused before any job; a run whose loss stops being a number stops
with one line instead of becoming a result."""

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
import yaml

from benchmarks.config import check_config, check_schema
from benchmarks.registry import ModelContext, get
from benchmarks.runner import make_split, run_task
from celllm.errors import InputError
from celllm.io import write_h5ad

ROOT = Path(__file__).resolve().parents[1]
SHARES = {"a": 0.7, "b": 0.2, "c": 0.1}
OPTIONS = {"epochs": 12, "lr": 1e-3, "batch_size": 16, "patience": 12}


def imbalanced_counts(n_cells=200, n_genes=30, seed=0) -> ad.AnnData:
    """Cell types a/b/c in 70/20/10 over the checkpoint fixture's genes G0..: each type expresses its own
    third of the genes highly on a common background, so the types are separable."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(list(SHARES), [round(n_cells * share) for share in SHARES.values()])
    means = np.full((len(SHARES), n_genes), 1.0)
    for k in range(len(SHARES)):
        means[k, k * n_genes // 3 : (k + 1) * n_genes // 3] = 12.0
    type_of = np.searchsorted(list(SHARES), labels)
    counts = rng.poisson(means[type_of]).astype(np.float32)
    obs = pd.DataFrame({"cell_type": pd.Categorical(labels)}, index=[f"cell{i}" for i in range(n_cells)])
    return ad.AnnData(sp.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=[f"G{i}" for i in range(n_genes)]))


@pytest.fixture(scope="module")
def imbalanced(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imbalanced")
    write_h5ad(imbalanced_counts(), folder / "cells.h5ad")
    inputs = {"data": folder / "cells.h5ad"}
    make_split("annotation", "standard", 0, inputs, folder / "split.tsv")
    return inputs, folder / "split.tsv"


def test_fine_tuning_on_an_imbalanced_dataset_learns_every_class(tmp_path, checkpoint, imbalanced):
    inputs, split = imbalanced
    context = ModelContext(checkpoint=checkpoint, options=OPTIONS)
    tuned = run_task("annotation", "standard", inputs, split, "celllm_finetune", 0, tmp_path / "finetune", context)
    majority = run_task("annotation", "standard", inputs, split, "majority", 0, tmp_path / "majority", ModelContext())
    predicted = pd.read_csv(tmp_path / "finetune" / "predictions.csv")["predicted"]
    assert predicted.nunique() == 3, predicted.value_counts().to_dict()
    assert tuned["metrics"]["macro_f1"] > majority["metrics"]["macro_f1"] + 0.4, (tuned["metrics"], majority["metrics"])


def test_the_class_weights_are_the_released_ones():
    from benchmarks.models.celllm_finetune import class_weights

    y = np.array([0] * 7 + [1] * 2 + [2])
    assert np.allclose(class_weights(y, 3), (1 - np.array([0.7, 0.2, 0.1])) ** 2)


def test_the_head_reads_each_token_at_its_gene():
    """The released head: token t's score lands at its gene id, [CLS]'s at n_genes, padding nowhere."""
    from benchmarks.models.celllm_finetune import GeneStateHead

    torch.manual_seed(0)
    head = GeneStateHead(dim=4, n_genes=5, n_classes=2)
    with torch.no_grad():
        head.token_score.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
        head.token_score.bias.zero_()
    seen = []
    head.mlp.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    states = torch.zeros(2, 3, 4)
    states[:, :, 0] = torch.tensor([[7.0, 2.0, 3.0], [5.0, 4.0, 9.0]])  # the scores (all positive: ReLU keeps them)
    gene_ids = torch.tensor([[5, 3, 0], [5, 1, 6]])  # [CLS] = gene id 5, padding = 6
    mask = torch.tensor([[True, True, True], [True, True, False]])
    head(states, gene_ids, mask)
    assert seen[0].tolist() == [[3.0, 0.0, 0.0, 2.0, 0.0, 7.0], [0.0, 4.0, 0.0, 0.0, 0.0, 5.0]]


@pytest.mark.parametrize("lr", [".inf", "-.inf", ".nan", "0", "-0.001", "true", "'1e-4'"])
def test_a_learning_rate_that_is_no_positive_number_is_refused_before_any_job(lr):
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    config["tasks"]["annotation"]["options"]["celllm_finetune"]["lr"] = yaml.safe_load(lr)
    check_schema(config, ROOT / "workflow" / "schemas" / "config.schema.yaml")  # the schema leaves model options to the model
    with pytest.raises(InputError) as refused:
        check_config(config)
    message = str(refused.value)
    assert message.startswith(
        "config: tasks.annotation.options.celllm_finetune: option 'lr' must be a positive number for model 'celllm_finetune'"
    )
    assert "\n" not in message
    with pytest.raises(InputError, match="option 'lr' must be a positive number"):
        get("celllm_finetune").resolve_options("annotation", {"lr": yaml.safe_load(lr)})


def test_a_diverging_fine_tune_stops_with_one_line_and_writes_no_result(tmp_path, checkpoint, imbalanced):
    inputs, split = imbalanced
    context = ModelContext(checkpoint=checkpoint, options={**OPTIONS, "lr": 1e30})  # finite, so it passes the option check
    with pytest.raises(InputError, match=r"the training diverged; lower the option 'lr'") as stopped:
        run_task("annotation", "standard", inputs, split, "celllm_finetune", 0, tmp_path / "run", context)
    assert "\n" not in str(stopped.value)
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_the_same_seed_gives_the_same_probabilities(checkpoint, imbalanced):
    from benchmarks.tasks import get_task

    inputs, split = imbalanced
    parts = get_task("annotation").load_parts(inputs, split)
    spec = get("celllm_finetune")
    context = ModelContext(checkpoint=checkpoint, options=spec.resolve_options("annotation", {**OPTIONS, "epochs": 2}))
    runs = []
    for _ in range(2):
        model = spec.factory(seed=3, context=context)
        model.fit(parts["train"], parts["val"])
        runs.append(model.predict_proba(parts["test"]))
    assert np.array_equal(runs[0], runs[1])


def test_the_released_weights_fine_tune_in_the_released_attention(tmp_path, imbalanced):
    """celllm_released_finetune: the same recipe over the authors' attention (padding keys counted, cells
    predicted in the data's order, RELEASED_BATCH at a time), here on a tiny released-format file."""
    from celllm.released import import_released
    from tests.fixtures.released import write_released_checkpoint

    inputs, split = imbalanced
    write_released_checkpoint(
        tmp_path / "checkpoint4_fixed.pth", 30, seed=3, dim=16, depth=2, heads=2, dim_head=8, nb_features=8, ff_mult=2
    )
    (tmp_path / "genes.txt").write_text("".join(f"G{i}\n" for i in range(30)))
    import_released(tmp_path / "checkpoint4_fixed.pth", tmp_path / "genes.txt", tmp_path / "imported", max_len=40)
    context = ModelContext(checkpoint=tmp_path / "imported", options=OPTIONS)
    record = run_task("annotation", "standard", inputs, split, "celllm_released_finetune", 0, tmp_path / "run", context)
    assert pd.read_csv(tmp_path / "run" / "predictions.csv")["predicted"].nunique() == 3
    assert record["metrics"]["macro_f1"] > 0.7
