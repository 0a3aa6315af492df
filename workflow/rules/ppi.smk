# Gene embeddings (phi_G): GraphMAE on the protein-protein interaction network.


rule ppi:
    input:
        edges=PPI_EDGES,
        vocab=VOCAB,
    output:
        embeddings="results/ppi/gene_embeddings.npz",
        log_csv="results/ppi/graphmae_log.csv",
    log:
        "logs/ppi/graphmae.log",
    conda:
        ENV
    threads: config["ppi"]["threads"]
    resources:
        **job_resources("ppi"),
    params:
        dim=CELLLM.encoder.dim,
        min_score=config["ppi"]["min_score"],
        graphmae=LIBRARY.graphmae.to_dict(),
    script:
        "../scripts/ppi.py"
