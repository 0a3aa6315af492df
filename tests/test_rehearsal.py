"""The rehearsal of the real run: config/paper.yaml end to end, offline, on a miniature mirror.

Every row of config/datasets.tsv is written in its source's real format
(tests/fixtures/mirror.py) and served from 127.0.0.1, or, for the `manual:`
rows, placed where the download job says to put it. The workflow then runs the
real DAG as a new user would (download -> parse -> vocabulary -> STRING ->
GraphMAE -> pretrain -> embed -> every task -> tables -> figures -> report),
with config/paper.yaml plus tests/rehearsal.yaml (a tiny model, three steps,
one seed, three models per task). To check a setup offline:

    pytest tests/test_rehearsal.py
"""

import json

import pandas as pd
import pytest
import yaml

from tests.fixtures.rehearsal import PAPER, SOURCES, snakemake_locally

_snakemake = snakemake_locally  # the `rehearsal` fixture (tests/conftest.py) ran it this way


def test_manual_sources_are_asked_for_once_each_with_an_absolute_destination(rehearsal):
    output = rehearsal["first"].stdout + rehearsal["first"].stderr
    assert rehearsal["first"].returncode != 0
    assert set(rehearsal["asked"]) == set(rehearsal["mirror"].manual), output[-3000:]
    for source, (page, dest) in rehearsal["asked"].items():
        assert dest.is_absolute() and dest == rehearsal["run"] / "resources" / source / dest.name
        assert page.startswith("https://") and output.count(f"download: {source}: no stable download address") == 1  # not retried


def test_the_real_dag_runs_to_tables_figures_and_report(rehearsal):
    second = rehearsal["second"]
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    report = rehearsal["report"]
    assert report.returncode == 0, (report.stdout + report.stderr)[-3000:]
    assert (rehearsal["run"] / "results" / "report.html").stat().st_size > 10_000


def test_the_planted_duplicate_is_the_only_evaluation_cell_found_in_the_corpus(rehearsal):
    """The mirror puts one Zheng68k cell into a PanglaoDB sample (MirrorBuilder.PLANTED_ZHENG_CELL): the
    contamination table names it, and every other dataset a task scores has zero (the reference is the
    mirror's own plant, made before any parse)."""
    from celllm.io import read_dataset
    from tests.fixtures.mirror import MirrorBuilder

    table = pd.read_csv(rehearsal["run"] / "results" / "tables" / "contamination.csv").set_index("dataset")
    paper = yaml.safe_load(PAPER.read_text())
    assert set(table.index) == {d for task in paper["tasks"].values() for d in task["datasets"]}
    planted = read_dataset(rehearsal["run"] / "results" / "data" / "zheng68k.h5ad").obs_names[MirrorBuilder.PLANTED_ZHENG_CELL]
    assert (table.loc["zheng68k", "n_in_corpus"], table.loc["zheng68k", "first_duplicates"]) == (1, planted)
    assert (table.drop(index="zheng68k")["n_in_corpus"] == 0).all()


def test_the_accession_table_compares_what_can_be_compared_and_says_so_for_the_rest(rehearsal):
    """By accession: the mirror's PanglaoDB samples (SRA..._SRS... names, none of them Baron's) against the
    evaluation datasets' accessions. Baron's four SRA samples are comparable and absent (the reference:
    the SraRunTable accessions of benchmarks/accessions.tsv); Zheng68k, known by its SRA study alone, is
    not comparable, never called clean."""
    table = pd.read_csv(rehearsal["run"] / "results" / "tables" / "contamination_accessions.csv").set_index("dataset")
    assert (table.loc["baron", "comparable"], table.loc["baron", "n_in_corpus"]) == (4, 0)
    assert table.loc["baron", "status"] == "none of 4 comparable accessions in the corpus"
    assert table.loc["zheng68k", "comparable"] == 0 and table.loc["zheng68k", "status"].startswith("not comparable: only sra_study known")


def test_every_paper_dataset_is_parsed_to_the_contract(rehearsal):
    from benchmarks.tasks.data import read_response_table
    from celllm.io import read_dataset
    from ingest.catalog import CATALOG

    data = rehearsal["run"] / "results" / "data"
    built = [name for name in CATALOG if (data / f"{name}.h5ad").exists()]
    assert set(CATALOG) - set(built) == {"gse117872_hn120"}
    for name in built:  # every label the catalog declares (the config check trusts them) is in what its parser wrote
        entry = CATALOG[name]
        if entry.response:
            assert set(entry.labels) <= set(read_response_table(data / f"{name}.response.tsv", read_dataset(data / f"{name}.h5ad")).columns)
            continue
        adata = read_dataset(data / f"{name}.h5ad", required_obs=list(entry.labels))
        assert entry.labels and adata.uns["gene_symbols"] == "HGNC approved" and "GENE010" in adata.var_names  # OLD010 / Ensembl ids mapped
    assert set(read_dataset(data / "panglaodb_human.h5ad").obs["tissue"]) == {"normal"}
    assert set(read_dataset(data / "cancerscem.h5ad").obs["tissue"]) == {"tumor"}
    assert set(read_dataset(data / "gse117872_hn137.h5ad").obs["origin"]) == {"HN137"}
    for name in ("gdsc_depmap", "gdsc_rma", "ccle"):
        lines = read_dataset(data / f"{name}.h5ad")
        pairs = read_response_table(data / f"{name}.response.tsv", lines)
        assert len(pairs) > 0 and set(pairs["cell_line"]) == set(lines.obs_names)
    assert read_dataset(data / "ccle.h5ad").obs_names.str.startswith("ACH-").all()  # DepMap's models key the DepMap profiles
    # GDSC's own lines take DepMap's profiles through their model: 900016 has none (and no copy number as ACH-000101 = 900002)
    for name, unprofiled in (("gdsc_depmap", ["ACH-000101"]), ("ccle", ["ACH-000002"]), ("gdsc_rma", ["900002", "900016"])):
        lines = read_dataset(data / f"{name}.h5ad")
        mutation, copy_number = lines.obsm["mutation"], lines.obsm["copy_number"]
        assert mutation.index.equals(lines.obs_names) and copy_number.index.equals(lines.obs_names), name
        assert (
            mutation.columns.tolist() == copy_number.columns.tolist() and len(mutation.columns) == 40
        )  # 54 listed: 13 non-coding, 1 unknown
        assert (mutation.dtypes == "float32").all() and set(mutation.stack().unique()) == {0.0, 1.0}  # DepMap's 2s binarised
        assert copy_number.loc[unprofiled].isna().all(axis=None) and copy_number.drop(index=unprofiled).notna().any(axis=1).all()
    assert read_dataset(data / "gdsc_rma.h5ad").obs_names.str.fullmatch(r"9\d{5}").all()  # COSMIC ids key GDSC's own


def test_every_parse_writes_its_ledger_and_each_loss_is_named(rehearsal):
    data = rehearsal["run"] / "results" / "data"
    paper = rehearsal["config"]
    parsed = {*(d for spec in paper["tasks"].values() for d in spec["datasets"]), *paper["pretrain"]["corpus"], "string_human"}
    for name in parsed:
        ledger = pd.read_csv(data / f"{name}.ledger.tsv", sep="\t", keep_default_na=False)
        assert (ledger["dataset"] == name).all() and (ledger["kept"] <= ledger["entered"]).all() and len(ledger) >= 2, name
    gdsc = pd.read_csv(data / "gdsc_depmap.ledger.tsv", sep="\t", keep_default_na=False)
    drugs = gdsc[(gdsc["step"] == "drug_structure") & (gdsc["unit"] == "drugs")].iloc[0]
    assert (drugs["entered"], drugs["kept"], drugs["lost_names"]) == (7, 6, "SG-0042")  # the code-named compound, accepted by paper.yaml
    assert "1 by PubChem name" in drugs["detail"]  # the drug listed without a CID, found by name
    lines = gdsc[(gdsc["step"] == "cell_line_model") & (gdsc["unit"] == "cell_lines")].iloc[0]
    assert lines["lost"] == 1 and lines["lost_names"] == "900016 (no model)"
    ccle = pd.read_csv(data / "ccle.ledger.tsv", sep="\t", keep_default_na=False).set_index(["step", "unit"])
    assert ccle.loc[("drug_structure", "drugs"), "detail"].startswith("3 by compound list name, 1 by compound list synonym")
    assert ccle.loc[("cell_line_model", "cell_lines"), "lost"] == 0  # LINE0_LUNG found as LINE0_SMALL_INTESTINE
    assert ccle.loc[("cell_line_omics", "cell_lines"), "lost_names"] == "ACH-000002 (no copy number)"  # kept, with a NaN row
    assert (
        ccle.loc[("cell_line_omics", "genes"), "kept"] == 40
        and "99999999 (no HGNC symbol)" in ccle.loc[("cell_line_omics", "genes"), "lost_names"]
    )
    assert "a loss above" not in (rehearsal["run"] / "logs" / "data" / "ccle.log").read_text()
    assert "data ledger" in (rehearsal["run"] / "logs" / "data" / "ccle.log").read_text()
    edges = pd.read_csv(data / "string_human.tsv", sep="\t")
    assert len(edges) > 0 and not edges["gene_a"].str.startswith("OLD").any()


def test_the_released_checkpoint_is_imported_in_its_own_gene_order(rehearsal):
    from celllm.checkpoint import load_checkpoint

    folder = rehearsal["run"] / "results" / "pretrain" / "celllm_released"
    _, vocab, cfg = load_checkpoint(folder)
    report = json.loads((folder / "released.json").read_text())
    assert cfg.encoder.attention == "released" and cfg.tokens.max_len == 6000 and cfg.tokens.truncation == "vocabulary_order"
    assert (
        report["genes"]["renamed"] > 0 and "GENE010" in vocab.genes and vocab.genes != sorted(vocab.genes)
    )  # OLD010 mapped, its own order
    embedded = rehearsal["run"] / "results" / "embeddings" / "celllm_released" / "zheng68k.h5ad"
    assert embedded.exists()


def test_vocabulary_gene_table_and_checkpoint(rehearsal):
    import numpy as np

    from celllm.checkpoint import load_checkpoint
    from celllm.tokens import Vocabulary

    results = rehearsal["run"] / "results"
    vocab = Vocabulary.load(results / "pretrain" / "celllm_paper.vocab.txt")
    non_coding = {f"GENE{i:03d}" for i in range(11, 200, 12)}
    assert vocab.genes == sorted(vocab.genes) and len(vocab) > 100 and not non_coding & set(vocab.genes)  # HGNC protein-coding only
    table = np.load(results / "ppi" / "gene_embeddings.npz")
    assert table["genes"].tolist() == vocab.genes and table["embeddings"].shape == (len(vocab), 16)
    model, loaded, cfg = load_checkpoint(results / "pretrain" / "celllm_paper")
    assert loaded == vocab and cfg.encoder.dim == 16 and cfg.tokens.truncation == "top_expressed"
    assert cfg.pretrain.precision == "bf16" and cfg.pretrain.sub_batch_tokens == 131072  # the paper's own values kept


def test_a_run_record_for_every_task_dataset_setting_and_model_with_its_own_options(rehearsal):
    from benchmarks import registry
    from benchmarks.tasks import task_settings

    config = rehearsal["config"]
    records = 0
    for task, spec in config["tasks"].items():
        for dataset in spec["datasets"]:
            for setting in task_settings(task, spec):
                for model in spec["models"]:
                    for seed in config["seeds"]:
                        path = rehearsal["run"] / f"results/runs/{task}/{dataset}/{setting}/{model}/seed{seed}/metrics.json"
                        record = json.loads(path.read_text())
                        configured = (spec.get("options") or {}).get(model, {})
                        assert record["options"] == registry.get(model).resolve_options(task, configured), path
                        records += 1
    assert records == 2 * 4 + 2 * 4 + 2 * 2 * 4 + 3 * 3 * 6  # embedding, annotation, drug sensitivity, drug response
    # no demo option leaks in: celllm_finetune runs with its own defaults (the released recipe), not the demo's 8 epochs at 1e-3
    finetune = json.loads(
        (rehearsal["run"] / "results/runs/drug_sensitivity/gse149383/full/celllm_finetune/seed0/metrics.json").read_text()
    )
    assert finetune["options"] == {"epochs": 20, "lr": 0.0001, "batch_size": 32, "patience": 4}
    # the released drug-response recipe and TGSA's own model ran on the real-format miniatures, with the recipe's defaults
    recipe = json.loads(
        (rehearsal["run"] / "results/runs/drug_response/gdsc_rma/cold_cell/celllm_released_tgdrp/seed0/metrics.json").read_text()
    )
    assert recipe["options"] == {"epochs": 2, "patience": 10, "lr": 0.0001, "batch_size": 32, "restore_best": False}
    assert (
        recipe["provenance"]["checkpoint_sha256"]
        and json.loads((rehearsal["run"] / "results/runs/drug_response/ccle/warm/tgdrp/seed0/metrics.json").read_text())["n_test"] > 0
    )
    probe = json.loads((rehearsal["run"] / "results/runs/drug_response/gdsc_depmap/warm/celllm_probe/seed0/metrics.json").read_text())
    assert probe["options"] == {
        "epochs": 3,
        "lr": 0.0001,
        "batch_size": 64,
        "patience": 30,
        "hidden": 128,
    }  # paper.yaml's, the rehearsal's epochs


def test_tables_show_the_published_numbers_beside_the_measured_ones(rehearsal):
    tables = rehearsal["run"] / "results" / "tables"
    annotation = pd.read_csv(tables / "annotation.csv")
    zheng = annotation[annotation["dataset"] == "zheng68k"]
    assert {"celllm_probe", "logreg_l1", "majority", "CellLM (paper)"} <= set(zheng["model"])
    assert zheng.loc[zheng["model"] == "CellLM (paper)", "macro_f1_mean"].iloc[0] == pytest.approx(0.718)
    assert not annotation["simulated"].astype(bool).any()
    response = (tables / "drug_response.md").read_text()
    assert "### drug_response / gdsc_depmap (warm; real data)" in response and "*CellLM (paper)*" in response
    assert "±" not in response  # one seed: no spread is shown
    figures = {p.name for p in (rehearsal["run"] / "results" / "figures").glob("*.png")}
    assert {
        "annotation.png",
        "drug_sensitivity.png",
        "drug_response.png",
        "embedding.png",
        "pretrain_losses.png",
        "confusion_zheng68k.png",
        "umap_baron.png",
        "scatter_gdsc_depmap.png",
    } <= figures
    embedding = pd.read_csv(tables / "embedding.csv")
    baron = embedding[embedding["dataset"] == "baron"].set_index("model")
    assert (
        baron["ilisi_mean"].notna().all() and embedding.loc[embedding["dataset"] == "zheng68k", "ilisi_mean"].isna().all()
    )  # donors only in Baron


def test_every_source_is_pinned_and_a_changed_placed_file_is_refused(rehearsal):
    from ingest.catalog import read_sources

    lock = pd.read_csv(rehearsal["lock"], sep="\t")
    assert set(lock["key"]) == set(read_sources(SOURCES).index) and lock["sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    placed = rehearsal["asked"]["gse149383_meta"][1]
    placed.write_text(placed.read_text() + "EXTRA,sensitive,D0,sensitive\n")
    result = _snakemake(rehearsal["project"], rehearsal["configfiles"], "results/data/gse149383.h5ad")
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "differs from the one pinned for 'gse149383_meta'" in output


def test_a_parse_that_loses_more_than_the_config_accepts_stops_with_one_line(rehearsal, tmp_path):
    # the same mirror, with paper.yaml's accepted loss of GDSC drugs taken back: the code-named drug SG-0042 now stops the parse
    strict = tmp_path / "strict.yaml"
    strict.write_text("data: {accept: {gdsc_depmap: {drug_structure: {max_loss: 0.0, reason: 'rehearsal: no drug may be lost'}}}}\n")
    result = _snakemake(rehearsal["project"], [*rehearsal["configfiles"], strict], "results/data/gdsc_depmap.h5ad")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "gdsc_depmap: step 'drug_structure' lost 1 of 7 drugs (14.3%, above the 0% allowed" in output and "SG-0042" in output
    assert not (rehearsal["run"] / "results" / "data" / "gdsc_depmap.h5ad").exists()  # nothing half-written is left
