"""The zero-shot embedding task: every model's embedding scored without training, donors as batches."""

import numpy as np
import pytest

from benchmarks import registry
from benchmarks.registry import ModelContext
from benchmarks.runner import run_task
from benchmarks.tasks import get_task, task_settings
from celllm.errors import InputError
from celllm.io import write_h5ad
from ingest.simulate import GeneProgramWorld
from tests.fixtures.data import SIM_GENES


@pytest.fixture(scope="module")
def donors_h5ad(tmp_path_factory):
    path = tmp_path_factory.mktemp("embedding") / "donors.h5ad"
    write_h5ad(GeneProgramWorld(SIM_GENES[:200], n_programs=6, seed=0).cell_types(240, 3, seed=1, n_donors=3), path)
    return path


def test_simulated_donors_add_a_batch_effect_and_leave_single_donor_data_unchanged():
    world = GeneProgramWorld(SIM_GENES[:200], n_programs=6, seed=0)
    alone, again = world.cell_types(60, 3, seed=1), world.cell_types(60, 3, seed=1, n_donors=1)
    assert (alone.X != again.X).nnz == 0 and "donor" not in alone.obs
    donors = world.cell_types(60, 3, seed=1, n_donors=3)
    assert donors.obs["donor"].nunique() == 3 and donors.uns["dataset"] == "sim_pbmc_donors"


def test_the_task_needs_no_split_and_refuses_split_fractions():
    task = get_task("embedding")
    assert not task.needs_split and task.split_inputs == ()
    with pytest.raises(ValueError, match="no split fractions"):
        task_settings("embedding", {"settings": {"zero_shot": {"test": 0.2}}})


def test_pca_beats_the_random_control_and_batches_are_scored(donors_h5ad, tmp_path):
    records = {
        m: run_task("embedding", "zero_shot", {"data": donors_h5ad}, None, m, 0, tmp_path / m, ModelContext())
        for m in ("pca", "random_embedding")
    }
    pca, random = records["pca"]["metrics"], records["random_embedding"]["metrics"]
    assert {"ari", "nmi", "asw_label", "knn_macro_f1", "asw_batch", "ilisi", "overall"} <= set(pca)
    assert pca["ari"] > 0.5 > random["ari"] + 0.4 and pca["knn_macro_f1"] > random["knn_macro_f1"] + 0.3
    assert random["ilisi"] > pca["ilisi"]  # noise mixes donors perfectly: why the overall score weighs bio first
    assert records["pca"]["n_all"] == 240 and records["pca"]["simulated"] is True and records["pca"]["embedding_dims"] == 50
    again = run_task("embedding", "zero_shot", {"data": donors_h5ad}, None, "pca", 0, tmp_path / "again", ModelContext())
    assert again["metrics"] == pca  # same seed, same numbers


def test_the_geometry_and_what_the_embedding_encodes_are_scored(donors_h5ad, tmp_path):
    """Known answers by construction: the random control is isotropic and encodes nothing; PCA of these
    cells (types differ by programs, donors shift them) encodes the cell types and the donors."""
    records = {
        m: run_task("embedding", "zero_shot", {"data": donors_h5ad}, None, m, 0, tmp_path / m, ModelContext())["metrics"]
        for m in ("pca", "random_embedding")
    }
    pca, random = records["pca"], records["random_embedding"]
    keys = {"mean_cosine", "alignment", "uniformity", "participation_ratio", "components_90", "knn_f1_donor", "depth_r_genes"}
    assert keys <= set(pca) and keys <= set(random)
    assert "knn_f1_tissue" not in pca  # the dataset has no tissue column
    assert abs(random["mean_cosine"]) < 0.05 and random["participation_ratio"] > 20  # noise: isotropic, every direction
    assert random["knn_f1_donor"] < 0.45 and random["depth_r_genes"] < 0.3  # encodes neither donor nor depth (chance 1/3)
    assert pca["knn_f1_donor"] > random["knn_f1_donor"] + 0.2  # the donor effect is in the expression, so in PCA too
    assert pca["alignment"] < random["alignment"]  # cells of one type closer together than random pairs


def test_frozen_celllm_joins_through_the_registry(donors_h5ad, tmp_path, checkpoint):
    assert {"celllm_probe", "celllm_untrained_probe", "pca", "random_embedding"} <= set(registry.models_for("embedding"))
    assert "celllm_finetune" not in registry.models_for("embedding")  # it needs training
    from tests.fixtures.data import TINY_MODEL, make_counts

    cells = make_counts(n_cells=60, labels=("a", "b", "c"))
    write_h5ad(cells, tmp_path / "cells.h5ad")
    record = run_task(
        "embedding",
        "zero_shot",
        {"data": tmp_path / "cells.h5ad"},
        None,
        "celllm_probe",
        0,
        tmp_path / "run",
        ModelContext(checkpoint=checkpoint),
    )
    assert record["embedding_dims"] == TINY_MODEL["encoder"]["dim"]  # the [CLS] state
    assert "asw_batch" not in record["metrics"] and record["metrics"]["overall"] == record["metrics"]["bio"]  # no donors


def test_an_embedding_of_the_wrong_shape_is_refused(donors_h5ad, tmp_path):
    class Broken:
        def embed(self, data):
            return np.zeros((3, 2))

    with pytest.raises(InputError, match="one row per cell"):
        get_task("embedding").run(Broken(), get_task("embedding").load_parts({"data": donors_h5ad}), 0)
