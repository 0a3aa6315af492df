"""Task, embedding and perf figures: drawn from tiny inputs in the real file layouts, PNG + PDF written,
reference rows never drawn as bars, bad inputs refused with the file named."""

import json

import matplotlib

matplotlib.use("Agg")

import anndata as ad  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from benchmarks.figures import bars as bar_figures  # noqa: E402
from benchmarks.figures import confusion, embeddings, perf, scatter
from celllm.errors import InputError  # noqa: E402
from celllm.io import write_h5ad  # noqa: E402

MODELS = [("celllm_probe", "celllm"), ("celllm_no_contrastive_probe", "celllm"), ("logreg_l1", "baseline"), ("majority", "control")]


def assert_written(png):
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    pdf = png.with_suffix(".pdf")
    assert pdf.read_bytes()[:4] == b"%PDF" and pdf.stat().st_size > 1000


def table_rows(task, setting, dataset, simulated, metrics, models=MODELS, nan=()):
    """Measured rows as benchmarks/aggregate.py writes them; metrics in `nan` undefined for controls."""
    rng = np.random.default_rng(len(dataset) + len(setting))
    rows = []
    for model, kind in models:
        row = {"task": task, "setting": setting, "dataset": dataset, "simulated": simulated, "model": model, "kind": kind}
        for metric in metrics:
            undefined = kind == "control" and metric in nan
            row[f"{metric}_mean"] = np.nan if undefined else rng.uniform(0.2, 0.9)
            row[f"{metric}_std"] = np.nan if undefined else rng.uniform(0, 0.05)
        row["n_seeds"] = 3
        rows.append(row)
    return rows


def reference_row(task, setting, dataset, model, **values):
    return {
        "task": task,
        "setting": setting,
        "dataset": dataset,
        "simulated": False,
        "model": model,
        "kind": "reference",
        **{f"{m}_mean": v for m, v in values.items()},
        "source": "a paper",
    }


def write_table(rows, path, ranked=True):
    table = pd.DataFrame(rows)
    if ranked:
        table["rank"] = 1
        table["beats_control"] = "yes"
    table.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- tables
def test_annotation_bars_per_dataset_and_references_not_bars(tmp_path):
    metrics = ["accuracy", "macro_f1", "weighted_f1"]
    rows = (
        table_rows("annotation", "standard", "sim_pbmc", True, metrics, nan=("macro_f1",))
        + table_rows("annotation", "standard", "zheng68k", False, metrics)
        + [reference_row("annotation", "standard", "zheng68k", "scBERT without pretraining (Boiarsky et al.)", macro_f1=0.672)]
    )
    csv = write_table(rows, tmp_path / "annotation.csv", ranked=False)  # an older table: no rank / beats_control
    figure = bar_figures.plot_task(csv, tmp_path / "annotation.png", "annotation")
    assert_written(tmp_path / "annotation.png")
    measured = pd.DataFrame(rows).query("kind != 'reference'")
    bars = sum(len(ax.patches) for ax in figure.axes)
    assert bars == measured[["accuracy_mean", "macro_f1_mean"]].notna().sum().sum()  # one bar per defined mean, none for references
    labels = [t.get_text() for ax in figure.axes for t in ax.get_yticklabels()]
    assert any("[published]" in label for label in labels)
    texts = [t.get_text() for ax in figure.axes for t in ax.texts] + [figure._suptitle.get_text()]
    assert any("(simulated)" in t for t in texts) and any("(real data)" in t for t in texts)
    assert any(t.get_text().startswith("n/a") for ax in figure.axes for t in ax.texts)  # the control's undefined macro F1


def test_drug_sensitivity_full_and_few_shot_side_by_side(tmp_path):
    metrics = ["accuracy", "f1", "auroc", "aupr"]
    rows = (
        table_rows("drug_sensitivity", "full", "sim_drug_sensitivity", True, metrics)
        + table_rows("drug_sensitivity", "few_shot", "sim_drug_sensitivity", True, metrics, nan=("auroc",))
        + table_rows("drug_sensitivity", "few_shot", "gse117872", False, metrics)
        + [reference_row("drug_sensitivity", "few_shot", "gse117872", "CellLM (paper; average of both datasets)", f1=0.889)]
    )
    bar_figures.plot_task(write_table(rows, tmp_path / "drug_sensitivity.csv"), tmp_path / "sens.png", "drug_sensitivity")
    assert_written(tmp_path / "sens.png")


def test_drug_response_three_splits(tmp_path):
    metrics = ["rmse", "mae", "r2", "pearson", "spearman", "per_drug_pearson", "n_drugs_per_drug_pearson"]
    models = [("celllm_probe", "celllm"), ("deepcdr_mlp", "baseline"), ("drug_mean", "control")]
    rows = [
        r
        for s in ("warm", "cold_cell", "cold_drug")
        for r in table_rows("drug_response", s, "sim_cell_lines", True, metrics, models, nan=("pearson", "per_drug_pearson"))
    ]
    rows += [reference_row("drug_response", "warm", "sim_cell_lines", "CellLM (paper)", pearson=0.934)]
    figure = bar_figures.plot_task(write_table(rows, tmp_path / "drug_response.csv"), tmp_path / "response.png", "drug_response")
    assert_written(tmp_path / "response.png")
    headers = [t.get_text() for ax in figure.axes if not ax.axison for t in ax.texts]
    assert headers == ["warm: unseen cell line–drug pairs", "cold cell: unseen cell lines", "cold drug: unseen drugs"]


def test_embedding_geometry_panels_from_the_table_alone(tmp_path):
    """The task's detail metrics, those the table has (no tissue column here), one panel each."""
    headline = ["overall", "ari", "nmi", "asw_label", "knn_macro_f1", "ilisi"]
    geometry = ["mean_cosine", "uniformity", "participation_ratio", "components_90", "knn_f1_donor", "knn_f1_sample", "depth_r_genes"]
    path = write_table(table_rows("embedding", "zero_shot", "sim_pbmc_donors", True, headline + geometry), tmp_path / "embedding.csv")
    figure = bar_figures.plot_task_details(path, tmp_path / "embedding_geometry.png", "embedding")
    assert_written(tmp_path / "embedding_geometry.png")
    panels = [ax.get_xlabel().replace("\n", " ") for ax in figure.axes]  # labels wrap
    assert "mean cosine of random pairs" in panels and "kNN F1: donor (batch kept)" in panels and "kNN F1: tissue" not in panels
    with pytest.raises(InputError, match="declares no detail metrics"):
        bar_figures.plot_task_details(path, tmp_path / "x.png", "annotation")


def test_a_table_without_the_metric_is_refused_by_name(tmp_path):
    rows = table_rows("annotation", "standard", "sim_pbmc", True, ["accuracy"])
    csv = write_table(rows, tmp_path / "partial.csv")
    with pytest.raises(InputError, match=r"partial\.csv: .*macro_f1_mean"):
        bar_figures.plot_task(csv, tmp_path / "x.png", "annotation")
    with pytest.raises(InputError, match=r"missing\.csv: file not found"):
        bar_figures.plot_task(tmp_path / "missing.csv", tmp_path / "x.png", "drug_response")
    with pytest.raises(InputError, match=r"partial\.csv: no rows for task 'drug_sensitivity'"):
        bar_figures.plot_task(
            write_table(table_rows("annotation", "full", "d", True, ["f1", "auroc"]), csv), tmp_path / "x.png", "drug_sensitivity"
        )
    assert not (tmp_path / "x.png").exists()


# ---------------------------------------------------------------- confusion matrix
def run_record(path, seed, matrix, labels=("B", "T cell", "NK"), dataset="sim_pbmc", model="celllm_probe"):
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "task": "annotation",
        "setting": "standard",
        "dataset": dataset,
        "simulated": True,
        "model": model,
        "kind": "celllm",
        "seed": seed,
        "metrics": {"accuracy": 0.5},
        "confusion": {"labels": list(labels), "matrix": matrix},
    }
    path.write_text(json.dumps(record))
    return path


def test_confusion_summed_over_seeds(tmp_path):
    paths = [run_record(tmp_path / f"seed{s}" / "metrics.json", s, [[5, 1, 0], [0, 4, 2], [0, 0, 0]]) for s in range(2)]
    figure = confusion.plot_confusion(paths, tmp_path / "confusion.png")
    assert_written(tmp_path / "confusion.png")
    assert "celllm_probe" in figure._suptitle.get_text() and "(simulated)" in figure._suptitle.get_text()


def test_confusion_refuses_bad_or_mixed_records(tmp_path):
    good = run_record(tmp_path / "a" / "metrics.json", 0, [[1, 0], [0, 1]], labels=("x", "y"))
    other = run_record(tmp_path / "b" / "metrics.json", 0, [[1, 0], [0, 1]], labels=("x", "y"), model="mlp")
    with pytest.raises(InputError, match=r"b/metrics\.json: run record of mlp"):
        confusion.plot_confusion([good, other], tmp_path / "x.png")
    broken = tmp_path / "c" / "metrics.json"
    broken.parent.mkdir()
    broken.write_text(json.dumps({"model": "m", "metrics": {}}))
    with pytest.raises(InputError, match=r"c/metrics\.json: no confusion matrix"):
        confusion.plot_confusion([broken], tmp_path / "x.png")


# ---------------------------------------------------------------- predicted vs measured
def test_predicted_vs_measured_one_panel_per_model(tmp_path):
    rng = np.random.default_rng(0)
    inputs = {}
    for model, kind in [("celllm_probe", "celllm"), ("deepcdr_mlp", "baseline"), ("drug_mean", "control")]:
        inputs[model] = []
        for seed in range(2):
            folder = tmp_path / model / f"seed{seed}"
            folder.mkdir(parents=True)
            true = rng.normal(3, 2, 20)
            predicted = np.full(20, 3.0) if kind == "control" else true + rng.normal(0, 1, 20)  # a control predicts a constant
            pd.DataFrame({"cell_line": "L", "drug": "D", "true": true, "predicted": predicted}).to_csv(
                folder / "predictions.csv", index=False
            )
            if model != "deepcdr_mlp":  # a run record beside the predictions is optional
                (folder / "run.json").write_text(
                    json.dumps({"dataset": "sim_cell_lines", "setting": "warm", "simulated": True, "kind": kind})
                )
            inputs[model].append(folder / "predictions.csv")
    figure = scatter.plot_predicted_vs_measured(inputs, tmp_path / "scatter.png")
    assert_written(tmp_path / "scatter.png")
    titles = [ax.get_title() for ax in figure.axes if ax.get_visible()]
    assert len(titles) == 3 and "n/a (constant)" in titles[2] and "Pearson r =" in titles[0]
    assert "(simulated)" in figure._suptitle.get_text()


def test_predicted_vs_measured_refuses_a_file_without_predictions(tmp_path):
    pd.DataFrame({"true": [1.0, 2.0]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match=r"bad\.csv: .*predicted"):
        scatter.plot_predicted_vs_measured({"mlp": [tmp_path / "bad.csv"]}, tmp_path / "x.png")


# ---------------------------------------------------------------- embeddings
@pytest.fixture
def embedded(tmp_path):
    rng = np.random.default_rng(0)
    n = 40
    labels = np.array(["B cell", "T cell"])[np.arange(n) % 2]
    counts = rng.poisson(np.where(labels[:, None] == "B cell", 3.0, 0.5) * rng.gamma(1.0, 1.0, (1, 30))).astype(np.float32)
    adata = ad.AnnData(
        sp.csr_matrix(counts),
        obs=pd.DataFrame({"cell_type": pd.Categorical(labels)}, index=[f"c{i}" for i in range(n)]),
        var=pd.DataFrame(index=[f"G{i}" for i in range(30)]),
    )
    adata.obsm["X_celllm"] = rng.normal(size=(n, 8)).astype(np.float32) + (labels == "B cell")[:, None]
    adata.obs["score"] = rng.uniform(size=n)
    adata.uns.update(dataset="tiny", simulated=True)
    write_h5ad(adata, tmp_path / "tiny.h5ad")
    return tmp_path / "tiny.h5ad"


def _saved_embeddings(folder, n, models=("pca", "random_embedding")) -> dict:
    """An embedding.npy per model, as the embedding task's runs save them (float32, as a model may give)."""
    rng = np.random.default_rng(1)
    paths = {}
    for model in models:
        paths[model] = folder / model / "embedding.npy"
        paths[model].parent.mkdir(parents=True, exist_ok=True)
        np.save(paths[model], rng.normal(size=(n, 6)).astype(np.float32))
    return paths


def test_umaps_of_every_model_coloured_by_cell_type_and_donor(tmp_path, embedded):
    adata = ad.read_h5ad(embedded)
    adata.obs["donor"] = pd.Categorical(np.array(["d1", "d2"])[np.arange(adata.n_obs) // 20])
    write_h5ad(adata, tmp_path / "donors.h5ad")
    models = _saved_embeddings(tmp_path / "runs", adata.n_obs)
    figure = embeddings.plot_embedding_umaps(tmp_path / "donors.h5ad", models, tmp_path / "umap.png")
    assert_written(tmp_path / "umap.png")
    assert "(simulated)" in figure._suptitle.get_text()
    panels = [ax for ax in figure.axes if ax.collections]
    assert len(panels) == 4 and {ax.get_title() for ax in panels} >= {"pca", "random_embedding"}  # 2 models x (type, donor)
    embeddings.plot_embedding_umaps(embedded, models, tmp_path / "no_donor.png")  # no donors: one row
    assert_written(tmp_path / "no_donor.png")
    x = np.random.default_rng(0).normal(size=(30, 5))
    np.testing.assert_array_equal(embeddings._umap(x, seed=3), embeddings._umap(x, seed=3))  # seeded, so reproducible


def test_umaps_refuse_bad_inputs(tmp_path, embedded):
    models = _saved_embeddings(tmp_path / "runs", 40, models=("pca",))
    with pytest.raises(InputError, match=r"tiny\.h5ad: no column 'response'"):
        embeddings.plot_embedding_umaps(embedded, models, tmp_path / "x.png", target="response")
    with pytest.raises(InputError, match=r"missing\.h5ad"):
        embeddings.plot_embedding_umaps(tmp_path / "missing.h5ad", models, tmp_path / "x.png")
    with pytest.raises(InputError, match="no models given"):
        embeddings.plot_embedding_umaps(embedded, {}, tmp_path / "x.png")
    with pytest.raises(InputError, match="model 'mlp' has no saved embedding"):
        embeddings.plot_embedding_umaps(embedded, {"mlp": tmp_path / "none.npy"}, tmp_path / "x.png")
    np.save(tmp_path / "short.npy", np.zeros((39, 4)))
    with pytest.raises(InputError, match=r"short\.npy: the array has shape \(39, 4\); expected one row per cell \(40\)"):
        embeddings.plot_embedding_umaps(embedded, {"pca": tmp_path / "short.npy"}, tmp_path / "x.png")


# ---------------------------------------------------------------- perf
def test_dnc_and_tokens_figures(tmp_path):
    runs = []
    for b in (4, 8, 16):
        for method in ("full", "dnc"):
            if method == "full" and b == 16:
                runs.append({"method": "full", "batch_size": 16, "sub_batch_size": None, "error": "out of memory"})
                continue
            runs.append(
                {
                    "method": method,
                    "batch_size": b,
                    "sub_batch_size": 4 if method == "dnc" else None,
                    "seconds_per_step": 0.01 * b,
                    "seconds_all": [0.009 * b, 0.01 * b, 0.012 * b],
                    "peak_mb": (10 if method == "dnc" else 3) * b,
                }
            )
    dnc = {
        "benchmark": "dnc",
        "environment": {"device": "cuda", "gpu": "Tiny GPU"},
        "settings": {"sub_batch_size": 4},
        "runs": runs,
        "targets": {
            "dnc_memory_flat": {"ratio": 1.1, "threshold": 1.3, "comparison": "<=", "met": True},
            "dnc_time_overhead": {"ratio": None, "threshold": 1.3, "comparison": "<=", "met": None},
        },
    }
    (tmp_path / "dnc.json").write_text(json.dumps(dnc))
    perf.plot_dnc(tmp_path / "dnc.json", tmp_path / "dnc.png")
    assert_written(tmp_path / "dnc.png")
    modes = [
        {"mode": m, "cells_per_s": v, "tokens_per_cell": t}
        for m, v, t in [("nonzero_dynamic", 180.0, 700.0), ("nonzero_fixed", 100.0, 1238.0), ("dense", 10.0, 4001.0)]
    ]
    tokens = {
        "benchmark": "tokens",
        "environment": {"device": "cpu", "torch_threads": 2},
        "data": {"n_genes": 4000, "zero_fraction": 0.9},
        "settings": {"batch_size": 16},
        "modes": modes,
    }
    (tmp_path / "tokens.json").write_text(json.dumps(tokens))
    perf.plot_tokens(tmp_path / "tokens.json", tmp_path / "tokens.png")
    assert_written(tmp_path / "tokens.png")


def test_perf_figures_refuse_the_wrong_record(tmp_path):
    (tmp_path / "tokens.json").write_text(json.dumps({"benchmark": "tokens", "modes": []}))
    with pytest.raises(InputError, match=r"tokens\.json: not a 'dnc' benchmark record"):
        perf.plot_dnc(tmp_path / "tokens.json", tmp_path / "x.png")
    with pytest.raises(InputError, match=r"tokens\.json: no 'modes'"):
        perf.plot_tokens(tmp_path / "tokens.json", tmp_path / "x.png")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(InputError, match=r"broken\.json: not a readable JSON"):
        perf.plot_tokens(tmp_path / "broken.json", tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
