"""The task runner: splits per setting, bad inputs, the fine-tuning recipe."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks.registry import ModelContext
from benchmarks.runner import make_split, run_task
from benchmarks.tasks import task_settings
from benchmarks.tasks.data import read_response_table
from celllm.checkpoint import load_checkpoint
from celllm.errors import InputError
from celllm.io import write_h5ad
from tests.fixtures.data import make_counts, make_drug_response


def test_config_can_pick_and_resize_settings():
    settings = task_settings("drug_sensitivity", {"settings": {"few_shot": {"train": 0.1}}})
    assert list(settings) == ["few_shot"] and settings["few_shot"].train == 0.1 and settings["few_shot"].test == 0.1
    with pytest.raises(ValueError, match="unknown setting"):
        task_settings("drug_response", {"settings": {"lukewarm": {}}})


def test_split_files_are_the_same_for_the_same_seed(tmp_path, drug_response_files):
    inputs = dict(zip(("data", "response", "drugs"), drug_response_files))
    a = make_split("drug_response", "cold_cell", 0, inputs, tmp_path / "a.tsv")
    b = make_split("drug_response", "cold_cell", 0, inputs, tmp_path / "b.tsv")
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes() and (a == b).all()
    table = pd.read_csv(tmp_path / "a.tsv", sep="\t")
    assert table["id"].str.contains("::").all()


def _write_pairs(path, pairs):
    pairs.to_csv(path, sep="\t", index=False)
    return path


def test_bad_response_tables_are_named(tmp_path):
    cell_lines, pairs = make_drug_response(n_lines=4)
    cases = {
        "missing column": (pairs.drop(columns="smiles"), "missing column\\(s\\) smiles"),
        "nan": (pairs.assign(ln_ic50=[np.nan] + pairs["ln_ic50"].tolist()[1:]), "ln_ic50 values are missing"),
        "duplicate": (pd.concat([pairs, pairs.head(1)]), "1 duplicated \\(cell_line, drug\\) pairs, e.g. \\(LINE-0, Cisplatin\\)"),
        "no known line": (pairs.assign(cell_line="UNKNOWN-" + pairs["cell_line"]), "no cell line of the table has an expression profile"),
    }
    for name, (table, message) in cases.items():
        path = _write_pairs(tmp_path / f"{name}.tsv", table)
        with pytest.raises(InputError, match=f"{name}.tsv: {message}"):
            read_response_table(path, cell_lines)
    with pytest.raises(InputError, match="drug-response table not found"):
        read_response_table(tmp_path / "none.tsv")


def test_pairs_of_lines_without_expression_are_dropped(tmp_path):
    cell_lines, pairs = make_drug_response(n_lines=4)
    extra = pairs.head(2).assign(cell_line="NO-PROFILE")
    table = read_response_table(_write_pairs(tmp_path / "p.tsv", pd.concat([pairs, extra])), cell_lines)
    assert len(table) == len(pairs) and "NO-PROFILE" not in set(table["cell_line"])


def test_missing_label_column_is_named(tmp_path):
    write_h5ad(make_counts(label_column="cell_type"), tmp_path / "d.h5ad")
    with pytest.raises(InputError, match="response"):
        make_split("drug_sensitivity", "full", 0, {"data": tmp_path / "d.h5ad"}, tmp_path / "s.tsv")
    assert not (tmp_path / "s.tsv").exists()


def test_partial_fine_tuning_embeds_like_the_frozen_encoder_and_trains_only_the_top(checkpoint):
    model, _, _ = load_checkpoint(checkpoint)
    encoder = model.encoder.eval()
    gene_ids, bins = torch.randint(0, 30, (3, 9)), torch.randint(0, 5, (3, 9))
    mask = torch.ones(3, 9, dtype=torch.bool)
    partial = encoder.embed_last_layers(gene_ids, bins, mask)
    assert torch.allclose(partial, encoder.embed(gene_ids, bins, mask), atol=1e-6)
    partial.sum().backward()
    assert encoder.layers[-1].ff.up.weight.grad is not None and encoder.norm.weight.grad is not None
    assert encoder.layers[0].ff.up.weight.grad is None and encoder.gene_embedding.weight.grad is None


def test_fine_tuning_is_reproducible_and_leaves_the_checkpoint_alone(tmp_path, checkpoint):
    from celllm.checkpoint import checkpoint_hash

    before = checkpoint_hash(checkpoint)
    write_h5ad(make_counts(n_cells=60, labels=("a", "b", "c")), tmp_path / "cells.h5ad")
    inputs = {"data": tmp_path / "cells.h5ad"}
    make_split("annotation", "standard", 0, inputs, tmp_path / "split.tsv")
    context = ModelContext(checkpoint=checkpoint, options={"epochs": 3, "lr": 1e-3})
    records = [
        run_task("annotation", "standard", inputs, tmp_path / "split.tsv", "celllm_finetune", 0, tmp_path / f"run{i}", context)
        for i in range(2)
    ]
    assert records[0]["metrics"] == records[1]["metrics"]
    assert (tmp_path / "run0/predictions.csv").read_bytes() == (tmp_path / "run1/predictions.csv").read_bytes()
    assert checkpoint_hash(checkpoint) == before
    assert json.loads((tmp_path / "run0/metrics.json").read_text())["confusion"]["labels"] == ["a", "b", "c"]


def test_cached_embeddings_are_used_only_when_the_checkpoint_matches(tmp_path, checkpoint):
    from benchmarks.models.celllm_common import cell_embeddings
    from celllm.embed import OBSM_KEY, embed_file

    data = make_counts(n_cells=10)
    write_h5ad(data, tmp_path / "cells.h5ad")
    embed_file(tmp_path / "cells.h5ad", checkpoint, tmp_path / "cached.h5ad", progress=False)
    import anndata as ad

    cached = ad.read_h5ad(tmp_path / "cached.h5ad")
    context = ModelContext(checkpoint=checkpoint, embeddings=tmp_path / "cached.h5ad")
    assert np.allclose(cell_embeddings(data[::-1].copy(), context), cached.obsm[OBSM_KEY][::-1])
    cached.uns["celllm"]["checkpoint_sha256"] = "0" * 64
    write_h5ad(cached, tmp_path / "stale.h5ad")
    with pytest.raises(InputError, match="stale.h5ad: no .obsm"):
        cell_embeddings(data, ModelContext(checkpoint=checkpoint, embeddings=tmp_path / "stale.h5ad"))
