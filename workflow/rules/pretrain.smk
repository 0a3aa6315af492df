# Pretraining through the user-facing command, `celllm pretrain`: the configured
# run (results/pretrain/{name}) and the ablations the benchmark models ask for
# (results/pretrain/{name}_{ablation}, see benchmarks/ablations.py).


rule pretrain_config:
    output:
        "results/pretrain/{checkpoint_name}.config.json",
    params:
        model=canonical(config["pretrain"]["model"]),
        base=PRETRAIN_NAME,
    log:
        "logs/pretrain/{checkpoint_name}.config.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/pretrain_config.py"


rule pretrain:
    input:
        corpus=expand("results/data/{name}.h5ad", name=config["pretrain"]["corpus"]),
        config="results/pretrain/{checkpoint_name}.config.json",
        vocab=VOCAB,
        gene_embeddings=rules.ppi.output.embeddings,
    output:
        directory("results/pretrain/{checkpoint_name}"),
    log:
        "logs/pretrain/{checkpoint_name}.log",
    threads: config["pretrain"].get("threads", config["threads"])
    conda:
        ENV
    script:
        "../scripts/pretrain.py"
