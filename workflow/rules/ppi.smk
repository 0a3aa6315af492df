# Gene embeddings (phi_G): GraphMAE on the protein-protein interaction network.


# The paper's 19,379-gene list was never published. With `pretrain.genes:
# protein_coding` the vocabulary is every HGNC protein-coding gene seen in the
# corpus, sorted (celllm.tokens.Vocabulary.from_datasets); with `all`, every
# corpus gene in order of appearance (the demo).
rule vocabulary:
    input:
        unpack(
            lambda wildcards: {"corpus": expand("results/data/{name}.h5ad", name=config["pretrain"]["corpus"])}
            | ({"hgnc": raw_file("hgnc")} if config["pretrain"]["genes"] == "protein_coding" else {})
        ),
    output:
        VOCAB,
    log:
        "logs/pretrain/vocabulary.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/vocabulary.py"


rule ppi:
    input:
        edges=f"results/data/{config['ppi']['edges']}.tsv",
        vocab=VOCAB,
    output:
        embeddings="results/ppi/gene_embeddings.npz",
        log_csv="results/ppi/graphmae_log.csv",
    params:
        dim=config["pretrain"]["model"]["encoder"]["dim"],
        min_score=config["ppi"]["min_score"],
        graphmae=canonical(config["ppi"]["graphmae"]),
    log:
        "logs/ppi/graphmae.log",
    threads: config["ppi"]["threads"]
    conda:
        ENV
    script:
        "../scripts/ppi.py"
