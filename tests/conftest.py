"""The suite's pytest fixtures, built from the shared data of tests/fixtures: a tiny config, a tiny
corpus and pretrained checkpoint, a tiny drug-response dataset, the simulated gene-program world and
a private SLURM cluster. Test modules import helpers from tests.fixtures, never from here."""

from pathlib import Path

import pytest

from celllm.config import CellLMConfig
from celllm.io import write_h5ad
from tests.fixtures.data import SIM_GENES, TINY_MODEL, make_counts, make_drug_response, write_network


@pytest.fixture
def tiny_config() -> CellLMConfig:
    return CellLMConfig.from_dict(TINY_MODEL)


@pytest.fixture(scope="session")
def corpus_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.h5ad"
    write_h5ad(make_counts(n_cells=48, seed=1), path)
    return path


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory, corpus_path):
    from celllm.pretrain.corpus import load_corpus
    from celllm.pretrain.trainer import pretrain

    cfg = CellLMConfig.from_dict(TINY_MODEL)
    out = tmp_path_factory.mktemp("ckpt") / "model"
    return pretrain(load_corpus([corpus_path], cfg.tokens), out, cfg, progress=False)


@pytest.fixture(scope="session")
def drug_response_files(tmp_path_factory):
    """(cell lines .h5ad, response .tsv, drug features .pt, interaction network .tsv) of a tiny drug-response dataset."""
    from benchmarks.drugs import featurize_drugs

    folder = tmp_path_factory.mktemp("drug_response")
    cell_lines, pairs = make_drug_response()
    write_h5ad(cell_lines, folder / "lines.h5ad")
    pairs.to_csv(folder / "lines.response.tsv", sep="\t", index=False)
    featurize_drugs(pairs).save(folder / "lines.drugs.pt")
    network = write_network(folder / "network.tsv", list(cell_lines.var_names))
    return folder / "lines.h5ad", folder / "lines.response.tsv", folder / "lines.drugs.pt", network


@pytest.fixture(scope="session")
def world():
    """The simulated gene-program world of the demo's size (765 genes SIMG0000.., 12 programs, seed 0)."""
    from ingest.simulate import GeneProgramWorld

    return GeneProgramWorld(SIM_GENES, n_programs=12, seed=0)


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory):
    """The rehearsal of the real run on 2 local cores (tests/fixtures/rehearsal.py), with its report; session-wide,
    since the SLURM rehearsal (tests/test_slurm.py) compares its tables with this one's."""
    from tests.fixtures.rehearsal import rehearse, snakemake_locally

    result = rehearse(tmp_path_factory.mktemp("rehearsal"))
    result["report"] = snakemake_locally(result["project"], result["configfiles"], "--report", "results/report.html")
    return result


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A private SLURM cluster for the session (tests/fixtures/slurm.py) of two nodes on this host, so that a job
    can span nodes, with the partitions the project's SLURM profile names; skipped, with the reason, where SLURM
    cannot run."""
    from tests.fixtures.slurm import local_slurm_cluster, profile_partitions, slurm_unavailable

    if reason := slurm_unavailable():
        pytest.skip(reason)
    partitions = profile_partitions(Path(__file__).resolve().parents[1] / "profiles" / "slurm" / "config.yaml")
    with local_slurm_cluster(tmp_path_factory.mktemp("slurm"), partitions=partitions, nodes=2) as cluster:
        yield cluster
