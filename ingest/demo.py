"""Every simulated dataset of the demo, from one gene-program world."""

from __future__ import annotations

from celllm.io import write_h5ad
from celllm.outputs import atomic_path
from ingest.simulate import CORPUS_N_TYPES, GeneProgramWorld, load_drug_table

# The demo's simulated datasets (results/data/{name}.h5ad), by their key in `outputs`; the
# cell lines' response table and the interaction network are {cell_lines}.response.tsv and {ppi}.tsv.
SIMULATED = {
    "corpus": "sim_pretrain",
    "pbmc": "sim_pbmc",
    "pbmc_donors": "sim_pbmc_donors",
    "drug_sensitivity": "sim_drug_sensitivity",
    "cell_lines": "sim_cell_lines",
}
SIMULATED_PPI = "sim_ppi"
# what a task can predict from each (.obs columns, or the response table's ln_ic50), as the simulator writes them
SIMULATED_LABELS = {
    "sim_pretrain": ("tissue", "cell_type"),
    "sim_pbmc": ("cell_type",),
    "sim_pbmc_donors": ("cell_type", "donor"),
    "sim_drug_sensitivity": ("response",),
    "sim_cell_lines": ("ln_ic50",),
}


def write_simulated_datasets(
    genes,
    outputs: dict[str, str],
    seed: int = 0,
    n_programs: int = 12,
    corpus_cells: int = 3000,
    pbmc_cells: int = 1500,
    pbmc_types: int = 8,
    drug_sensitivity_cells: int = 800,
    cell_lines: int = 60,
) -> None:
    """Simulate and write the datasets named in `outputs` (keys: corpus, pbmc, pbmc_donors, drug_sensitivity, cell_lines,
    drug_response, ppi); `pbmc_donors` is `pbmc`'s world of cell types drawn again across three donors.

    Each dataset gets its own seed derived from `seed`, so that changing one
    size does not change the others.
    """
    world = GeneProgramWorld(list(genes), n_programs=n_programs, seed=seed)
    write_h5ad(world.pretraining_corpus(corpus_cells, seed=seed + 1), outputs["corpus"])
    write_h5ad(world.cell_types(pbmc_cells, pbmc_types, seed=seed + 2), outputs["pbmc"])
    write_h5ad(world.drug_sensitivity(drug_sensitivity_cells, seed=seed + 3), outputs["drug_sensitivity"])
    write_h5ad(world.cell_types(pbmc_cells, pbmc_types, seed=seed + 6, n_donors=3), outputs["pbmc_donors"])
    bulk, response = world.cell_lines(cell_lines, load_drug_table(), seed=seed + 4)
    write_h5ad(bulk, outputs["cell_lines"])
    for key, table in (("drug_response", response), ("ppi", world.ppi_graph(seed=seed + 5))):
        with atomic_path(outputs[key]) as tmp:
            table.to_csv(tmp, sep="\t", index=False)


# The recipe study's validation cells (benchmarks/recipe.py): the demo's world drawn again with seeds no
# demo dataset uses. `cells`: RECIPE_TYPES balanced cell types across three donors, the types from
# CORPUS_N_TYPES on never seen in pretraining; `corpus`: a new draw of the pretraining corpus's samples.
RECIPE_DATASETS = {"cells": "recipe_heldout_cells", "corpus": "recipe_heldout_corpus"}
RECIPE_TYPES = CORPUS_N_TYPES + 8
RECIPE_CELLS = 2400
RECIPE_CORPUS_CELLS = 1200
_RECIPE_SEED_OFFSET = 100  # past every seed offset write_simulated_datasets uses


def write_recipe_datasets(genes, outputs: dict[str, str], seed: int = 0, n_programs: int = 12, **_sizes) -> None:
    """Write the recipe study's held-out validation datasets (keys of RECIPE_DATASETS) from the demo's world
    (`seed`, `n_programs` as in the simulation config; the demo's dataset sizes are ignored)."""
    world = GeneProgramWorld(list(genes), n_programs=n_programs, seed=seed)
    cells = world.cell_types(RECIPE_CELLS, RECIPE_TYPES, seed=seed + _RECIPE_SEED_OFFSET, n_donors=3, balanced=True)
    write_h5ad(cells, outputs["cells"])
    write_h5ad(world.pretraining_corpus(RECIPE_CORPUS_CELLS, seed=seed + _RECIPE_SEED_OFFSET + 1), outputs["corpus"])
