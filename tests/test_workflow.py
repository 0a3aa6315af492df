"""The whole DAG on tiny data: data -> pretraining (+ ablations) -> every task and setting -> tables."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _snakemake(workdir, *args, cores="2", project=ROOT, env=None):
    """snakemake on the Snakefile of `project` (this one, or a copy) in `workdir`; cores=None leaves --cores out,
    as --report and --unlock do. `env`: variables added to the environment of Snakemake and its jobs. It starts
    in `project`, since `python -m` puts the current folder first on the path: a copy's packages must win."""
    command = [sys.executable, "-m", "snakemake", "-s", str(Path(project) / "Snakefile"), "--directory", str(workdir), *args]
    command += ["--cores", cores] if cores else []
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}, cwd=project)


def _planned_rules(output: str) -> set[str]:
    """The rules of the jobs a Snakemake dry run plans."""
    return set(re.findall(r"^(?:local)?rule (\w+):", output, flags=re.M))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    result = _snakemake(workdir, "--configfile", str(ROOT / "tests" / "workflow_config.yaml"))
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


def test_tiny_run_writes_annotation_table_for_every_model(finished_run):
    table = pd.read_csv(finished_run / "results" / "tables" / "annotation.csv")
    assert set(table["dataset"]) == {"sim_pbmc", "pbmc68k_reduced"}
    import yaml

    from benchmarks.pretrainings import RELEASED
    from benchmarks.registry import get, models_for

    # every registered model, but those of the released checkpoint, which a config must ask for (released: true)
    expected = {m for m in models_for("annotation") if get(m).pretraining != RELEASED}
    assert not yaml.safe_load((ROOT / "tests" / "workflow_config.yaml").read_text()).get("released")
    assert set(table["model"]) == expected >= {"celllm_probe", "logreg_l1", "majority"}
    assert (table["n_seeds"] == 1).all()
    assert table["accuracy_mean"].between(0, 1).all()
    assert dict(zip(table["dataset"], table["simulated"])) == {"sim_pbmc": True, "pbmc68k_reduced": False}
    markdown = (finished_run / "results" / "tables" / "annotation.md").read_text()
    assert "### annotation / pbmc68k_reduced (standard; real data)" in markdown


def test_every_task_and_setting_has_a_table_row_per_model(finished_run):
    import yaml

    from benchmarks.tasks import TASKS

    config = yaml.safe_load((ROOT / "tests" / "workflow_config.yaml").read_text())
    for task in ("drug_sensitivity", "drug_response"):
        table = pd.read_csv(finished_run / "results" / "tables" / f"{task}.csv")
        assert set(table["setting"]) == set(TASKS[task].settings)
        for setting, part in table.groupby("setting"):
            assert set(part["model"]) == set(config["tasks"][task]["models"]), (task, setting)
    response = pd.read_csv(finished_run / "results/tables/drug_response.csv")
    assert response["rmse_mean"].gt(0).all()


def test_ablation_checkpoints_are_pretrained_as_configured(finished_run):
    from celllm.config import CellLMConfig

    untrained = CellLMConfig.load(finished_run / "results/pretrain/tiny_untrained/config.json")
    no_contrastive = CellLMConfig.load(finished_run / "results/pretrain/tiny_no_contrastive/config.json")
    assert untrained.pretrain.max_steps == 0 and no_contrastive.pretrain.weight_contrastive == 0.0
    assert no_contrastive.pretrain.max_steps == CellLMConfig.load(finished_run / "results/pretrain/tiny/config.json").pretrain.max_steps


def test_run_record_contract(finished_run):
    record = json.loads((finished_run / "results/runs/annotation/pbmc68k_reduced/standard/celllm_probe/seed0/metrics.json").read_text())
    for key in ("task", "setting", "dataset", "model", "seed", "n_train", "n_val", "n_test", "metrics", "wall_time_s", "provenance"):
        assert key in record
    assert record["n_train"] + record["n_val"] + record["n_test"] == 700
    assert set(record["metrics"]) >= {"accuracy", "macro_f1"}
    assert len(record["provenance"]["checkpoint_sha256"]) == 64  # the CellLM run names its checkpoint
    predictions = pd.read_csv(finished_run / "results/runs/annotation/pbmc68k_reduced/standard/celllm_probe/seed0/predictions.csv")
    assert len(predictions) == record["n_test"]
    # the run's own record, written by the model run, holds everything but what scoring adds
    run = json.loads((finished_run / "results/runs/annotation/pbmc68k_reduced/standard/celllm_probe/seed0/run.json").read_text())
    assert "metrics" not in run and "confusion" not in run and {k: v for k, v in record.items() if k in run} == run
    # the zero-shot runs leave their embeddings, scored and drawn from the file
    import numpy as np

    for folder in (finished_run / "results/runs/embedding/sim_pbmc_donors/zero_shot").glob("*/seed0"):
        scored = json.loads((folder / "metrics.json").read_text())
        assert np.load(folder / "embedding.npy").shape == (scored["n_all"], scored["embedding_dims"]), folder


def test_a_dataset_above_shard_cells_is_embedded_in_shard_jobs_gathered_into_the_single_jobs_file(finished_run, tmp_path):
    """tests/workflow_config.yaml cuts pbmc68k_reduced (700 cells) into shards of 384 cells: two jobs per checkpoint,
    whose gather is byte for byte the file one job writes; the smaller datasets stay one job."""
    import torch
    import yaml

    from celllm.embed import embed_file
    from celllm.outputs import file_sha256
    from celllm.shards import read_plan

    embed = yaml.safe_load((ROOT / "tests" / "workflow_config.yaml").read_text())["embed"]
    assert read_plan(finished_run / "results/embeddings/pbmc68k_reduced.shards.json") == [(0, 384), (384, 700)]
    assert read_plan(finished_run / "results/embeddings/sim_pbmc.shards.json") == [(0, 120)]
    checkpoints = sorted(p.parent.name for p in finished_run.glob("results/embeddings/*/pbmc68k_reduced.h5ad"))
    assert checkpoints == ["tiny", "tiny_no_contrastive", "tiny_untrained"]
    for name in checkpoints:  # a job per shard, each on its own cells; the shards (temporary) gone once gathered
        logs = finished_run / "logs" / "embeddings" / name
        assert "cells 0:384 embedded" in (logs / "pbmc68k_reduced.shard0.log").read_text()
        assert "cells 384:700 embedded" in (logs / "pbmc68k_reduced.shard1.log").read_text()
        assert not list(logs.glob("sim_pbmc.shard*")) and not list((finished_run / "results/embeddings" / name).glob("*.h5"))
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as the jobs ran (threads: 1): a sum's rounding may follow the threads
    try:
        data, checkpoint = finished_run / "results/data/pbmc68k_reduced.h5ad", finished_run / "results/pretrain/tiny"
        embed_file(data, checkpoint, tmp_path / "one_job.h5ad", progress=False, block_cells=embed["block_cells"])
    finally:
        torch.set_num_threads(before)
    assert file_sha256(tmp_path / "one_job.h5ad") == file_sha256(finished_run / "results/embeddings/tiny/pbmc68k_reduced.h5ad")


def test_pbmc68k_test_cells_are_never_pretrained_on(finished_run):
    """The demo corpus is simulated only: no real cell, test split or not, enters pretraining."""
    import anndata as ad

    corpus = ad.read_h5ad(finished_run / "results/data/sim_pretrain.h5ad")
    split = pd.read_csv(finished_run / "results/splits/annotation/pbmc68k_reduced/standard/seed0.tsv", sep="\t")
    assert corpus.uns["simulated"] and not set(split["id"]) & set(corpus.obs_names)


def test_figures_are_redrawn_from_results_alone_and_the_report_builds(finished_run):
    import shutil

    figures = finished_run / "results" / "figures"
    drawn = sorted(p.name for p in figures.glob("*.png"))
    assert len(drawn) >= 8 and all((figures / name).with_suffix(".pdf").exists() for name in drawn)
    shutil.rmtree(figures)
    # every process of the redraw, Snakemake's jobs included, refuses to build a model or embed cells
    # (tests/fixtures/no_models/sitecustomize.py), and logs that it ran under that guard
    loaded = finished_run / "no_models.log"
    guard = {"PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "fixtures" / "no_models"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    guard["CELLLM_NO_MODELS_LOG"] = str(loaded)
    result = _snakemake(finished_run, "figures", "--configfile", str(ROOT / "tests" / "workflow_config.yaml"), env=guard)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert sorted(p.name for p in figures.glob("*.png")) == drawn
    lines = loaded.read_text().splitlines()
    assert len(set(lines)) > len(drawn), "the figure jobs must run under the guard"
    assert sum(line.endswith(" figure") for line in lines) == len(drawn), "each figure job refused model imports"
    for rule in ("run_", "pretrain:", "embed:", "aggregate:"):
        assert f"rule {rule}" not in output, rule  # no model, no table is recomputed
    result = _snakemake(
        finished_run, "--report", "results/report.html", "--configfile", str(ROOT / "tests" / "workflow_config.yaml"), cores=None
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (finished_run / "results" / "report.html").stat().st_size > 10_000


def test_unlock_needs_no_cores_and_perf_draws_its_figures(finished_run):
    config = str(ROOT / "tests" / "workflow_config.yaml")
    result = _snakemake(finished_run, "--unlock", "--configfile", config, cores=None)
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    result = _snakemake(finished_run, "perf", "-n", "--configfile", config)
    output = result.stdout + result.stderr
    assert result.returncode == 0 and output.count("rule perf_figure:") == 2, output[-3000:]  # what the report will ask for


def test_second_run_has_nothing_to_do(finished_run):
    result = _snakemake(finished_run, "--configfile", str(ROOT / "tests" / "workflow_config.yaml"), "-n")
    assert result.returncode == 0 and "Nothing to be done" in result.stdout + result.stderr


def test_changing_one_models_options_reruns_only_that_model(finished_run, tmp_path):
    import yaml

    config = yaml.safe_load((ROOT / "tests" / "workflow_config.yaml").read_text())
    config["tasks"]["drug_response"]["options"]["celllm_probe"]["epochs"] += 1
    (tmp_path / "edited.yaml").write_text(yaml.safe_dump(config))
    result = _snakemake(finished_run, "--configfile", str(tmp_path / "edited.yaml"), "-n")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    planned = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    wildcards: (.*)$", output, flags=re.M)
    runs = [(rule, wildcards) for rule, wildcards in planned if rule.startswith("run_")]
    assert len(runs) == 1 and runs[0][0] == "run_drug_response" and "model=celllm_probe" in runs[0][1], runs  # one job, every setting
    rules = _planned_rules(output)
    assert rules <= {"run_drug_response", "score_drug_response", "aggregate", "table_figure", "scatter_figure", "summary", "all"}, (
        rules
    )  # no split, pretrain or embed


def test_a_changed_metric_rescores_without_running_any_model(finished_run, tmp_path):
    """In a copy of the project, a metric's definition edited: only scoring and what reads the scores
    (tables, their figures, the summary) are planned, no model run, embedding, pretraining or split."""
    from tests.fixtures.repo import copy_project

    copy = copy_project(tmp_path / "project")
    config = str(ROOT / "tests" / "workflow_config.yaml")
    env = {"PYTHONPATH": os.pathsep.join([str(copy), os.environ.get("PYTHONPATH", "")])}  # the copy's code, in Snakemake and its jobs
    untouched = _snakemake(finished_run, "-n", "--configfile", config, project=copy, env=env)
    assert untouched.returncode == 0 and "Nothing to be done" in untouched.stdout + untouched.stderr, (untouched.stdout + untouched.stderr)[
        -3000:
    ]

    metrics = copy / "benchmarks" / "metrics.py"
    source = metrics.read_text()
    assert source.count('average="macro", zero_division=0') == 1
    metrics.write_text(source.replace('average="macro", zero_division=0', 'average="macro", zero_division=1'))
    result = _snakemake(finished_run, "-n", "--configfile", config, project=copy, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    rules = _planned_rules(output)
    scoring = {f"score_{task}" for task in ("embedding", "annotation", "drug_sensitivity", "drug_response")}
    assert scoring <= rules, rules  # every task's scores read benchmarks/metrics.py
    assert "Params have changed since last execution" in output  # the scoring code's hash, nothing else
    assert rules <= scoring | {"aggregate", "table_figure", "geometry_figure", "confusion_figure", "summary", "all"}, rules
    assert not {r for r in rules if r.startswith("run_") or r in ("embed", "pretrain", "split", "umap_figure", "scatter_figure")}


def _kill_after_a_periodic_checkpoint(run, target, configfiles) -> None:
    """Start Snakemake on `target` and kill it, with its job and every process that job started, as a power cut
    would, once the pretraining has saved a periodic checkpoint; assert the output was not finished."""
    import signal
    import time

    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(run), "--cores", "2", target]
    first = subprocess.Popen(
        [*command, "--configfile", *map(str, configfiles)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    saved, deadline = [], time.time() + 300
    while not saved and first.poll() is None and time.time() < deadline:
        saved = list((run / "results" / "pretrain").glob(".*.progress-*/trainer_state.pt"))
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # Snakemake, its job and torchrun (its ranks run in sessions of their own)
    first.wait()
    assert saved and not (run / target).exists(), "the first run must be killed after a periodic checkpoint, before the end"


def _resume(run, target, configfiles, steps: int) -> None:
    """Run `target` again after the kill: it resumes from the periodic checkpoint and repeats no step."""
    config = [arg for path in configfiles for arg in ("--configfile", str(path))]
    assert _snakemake(run, "--unlock", *config, cores=None).returncode == 0
    second = _snakemake(run, target, "--rerun-incomplete", *config)
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    name = Path(target).name
    resumed = re.search(rf"resuming at step (\d+) of {steps}", (run / "logs" / "pretrain" / f"{name}.log").read_text())
    assert resumed and int(resumed.group(1)) >= 10
    assert pd.read_csv(run / target / "train_log.csv")["step"].tolist() == list(range(1, steps + 1))  # none lost, none repeated
    assert not list((run / "results" / "pretrain").glob(f".{name}.progress-*"))  # published, then cleaned up


def _long_pretraining(tmp_path, steps, **pretrain):
    import yaml

    config = yaml.safe_load((ROOT / "tests" / "workflow_config.yaml").read_text())
    config["celllm"]["pretrain"].update(max_steps=steps, checkpoint_every=10)
    config["pretrain"].update(pretrain)
    path = tmp_path / f"long_{len(list(tmp_path.glob('long_*')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return [path]


def test_a_killed_pretraining_job_resumes_from_its_last_checkpoint(tmp_path):
    """Snakemake removes the output of a killed job; the pretraining keeps its periodic checkpoints beside it."""
    run, target, config = tmp_path / "run", "results/pretrain/tiny", _long_pretraining(tmp_path, 400)
    _kill_after_a_periodic_checkpoint(run, target, config)
    _resume(run, target, config, 400)


def test_two_processes_killed_and_resumed_reach_the_weights_of_one_process(finished_run, tmp_path):
    """`pretrain.processes_per_node: 2`: the workflow starts torchrun itself (gloo here), a kill takes every rank with
    it, the job resumes on two processes, and the weights are those of one uninterrupted process with the same
    global batch (the sum of two ranks' gradients rounds differently from one process's sum: close, not equal)."""
    import shutil

    import torch

    from celllm.checkpoint import load_checkpoint
    from tests.fixtures.slurm import processes_of  # any process naming the folder, by /proc

    target, steps = "results/pretrain/tiny", 60
    one, two = tmp_path / "one", tmp_path / "two"
    for run in (one, two):  # the finished run's data, gene embeddings and token store, copied with their times
        for part in ("data", "ppi", "pretrain/tiny.tokens", "pretrain/tiny.vocab.txt"):
            (run / "results" / part).parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if (finished_run / "results" / part).is_dir() else shutil.copy2)(
                finished_run / "results" / part, run / "results" / part
            )
    single = _snakemake(one, target, "--configfile", *map(str, _long_pretraining(tmp_path, steps)))
    assert single.returncode == 0, (single.stdout + single.stderr)[-3000:]
    assert "rule pretrain:" in single.stdout + single.stderr and "rule tokenize:" not in single.stdout + single.stderr

    config = _long_pretraining(tmp_path, steps, processes_per_node=2)
    _kill_after_a_periodic_checkpoint(two, target, config)
    assert not processes_of(two), "a rank outlived the killed job"
    _resume(two, target, config, steps)
    log = (two / "logs" / "pretrain" / "tiny.log").read_text()
    assert log.count("resuming at step") == 2, log[-2000:]  # both ranks resumed (a one-process run says it once)

    a, b = load_checkpoint(one / target)[0].state_dict(), load_checkpoint(two / target)[0].state_dict()
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=lambda m: f"{name}: {m}")


def test_lint_is_clean(tmp_path):
    result = _snakemake(tmp_path, "--lint", "--configfile", str(ROOT / "config" / "config.yaml"))
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr


def test_invalid_config_is_rejected_before_any_job(tmp_path):
    import yaml

    config = yaml.safe_load((ROOT / "tests" / "workflow_config.yaml").read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**config, "seeds": []}))
    result = _snakemake(tmp_path, "--configfile", str(bad), "-n")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "config: seeds: [] should be non-empty" in output and "Job stats" not in output


def test_paper_config_plans_every_job_without_network(tmp_path):
    result = _snakemake(tmp_path, "-n", "--configfile", str(ROOT / "config" / "paper.yaml"), "--directory", str(tmp_path))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for rule in (
        "download",
        "parse_dataset",
        "parse_drug_response_dataset",
        "string_ppi",
        "ppi",
        "pretrain",
        "embed",
        "run_embedding",
        "run_annotation",
        "run_drug_sensitivity",
        "run_drug_response",
        "aggregate",
    ):
        assert f"rule {rule}:" in output, rule
    for dataset in (
        "zheng68k",
        "baron",
        "gse149383",
        "gse117872_hn137",
        "panglaodb_human",
        "cancerscem",
        "gdsc_depmap",
        "gdsc_rma",
        "ccle",
    ):
        assert f"results/data/{dataset}.h5ad" in output and f"results/data/{dataset}.ledger.tsv" in output, dataset
    for task in ("annotation", "drug_sensitivity", "drug_response"):
        assert f"results/tables/{task}.csv" in output
