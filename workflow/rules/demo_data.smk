# The demo's datasets, made here without a download: scanpy's pbmc68k_reduced and the simulated world, in the standard contract under results/data/.


rule pbmc68k_reduced:
    output:
        f"results/data/{PBMC68K}.h5ad",
    log:
        "logs/data/pbmc68k_reduced.log",
    conda:
        ENV
    threads: 1
    script:
        "../scripts/pbmc68k_reduced.py"


# The simulated world uses pbmc68k_reduced's genes, so one vocabulary covers
# the real and the simulated cells.
rule simulate:
    input:
        genes_from=f"results/data/{PBMC68K}.h5ad",
    output:
        **{key: f"results/data/{name}.h5ad" for key, name in SIMULATED.items()},
        drug_response=f"results/data/{SIMULATED['cell_lines']}.response.tsv",
        ppi=f"results/data/{SIMULATED_PPI}.tsv",
    log:
        "logs/data/simulate.log",
    conda:
        ENV
    threads: 1
    params:
        simulation=canonical(config["simulation"]),
    script:
        "../scripts/simulate.py"
