# Pretraining through the user-facing command, `celllm pretrain`.


rule pretrain_config:
    output:
        f"results/pretrain/{config['pretrain']['name']}.config.json",
    params:
        model=config["pretrain"]["model"],
    log:
        "logs/pretrain/config.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/pretrain_config.py"


rule pretrain:
    input:
        corpus=expand("results/data/{name}.h5ad", name=config["pretrain"]["corpus"]),
        config=rules.pretrain_config.output[0],
        vocab=VOCAB,
        gene_embeddings=rules.ppi.output.embeddings,
    output:
        directory(CHECKPOINT),
    log:
        f"logs/pretrain/{config['pretrain']['name']}.log",
    threads: config["threads"]
    conda:
        ENV
    script:
        "../scripts/pretrain.py"
