# Datasets in the standard contract under results/data/.


rule pbmc68k_reduced:
    output:
        "results/data/pbmc68k_reduced.h5ad",
    log:
        "logs/data/pbmc68k_reduced.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/pbmc68k_reduced.py"


# The simulated world uses pbmc68k_reduced's genes, so one vocabulary covers
# the real and the simulated cells.
rule simulate:
    input:
        genes_from="results/data/pbmc68k_reduced.h5ad",
    output:
        corpus="results/data/sim_pretrain.h5ad",
        pbmc="results/data/sim_pbmc.h5ad",
        drug_sensitivity="results/data/sim_drug_sensitivity.h5ad",
        cell_lines="results/data/sim_cell_lines.h5ad",
        drug_response="results/data/sim_cell_lines.response.tsv",
        ppi="results/data/sim_ppi.tsv",
    params:
        simulation=canonical(config["simulation"]),
    log:
        "logs/data/simulate.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/simulate.py"
