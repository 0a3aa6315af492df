# Pretraining through the code of the user-facing `celllm pretrain` (celllm.pretrain.run):
# the configured run (results/pretrain/{name}) and the ablations the benchmark models ask for
# (results/pretrain/{name}_{ablation}, see benchmarks/pretrainings.py), each with the config's
# `celllm` section as resolved once (common.smk: CELLLM) and its ablation applied. The corpus
# is tokenized once into a token store that every pretraining (and every rank) maps.


# The paper's 19,379-gene list was never published. With `pretrain.genes:
# protein_coding` the vocabulary is every HGNC protein-coding gene seen in the
# corpus, sorted (celllm.tokens.Vocabulary.from_datasets); with `all`, every
# corpus gene in order of appearance (the demo).
rule vocabulary:
    input:
        unpack(vocabulary_inputs),
    output:
        VOCAB,
    log:
        "logs/pretrain/vocabulary.log",
    conda:
        ENV
    threads: 1
    script:
        "../scripts/vocabulary.py"


rule tokenize:
    input:
        corpus=expand("results/data/{name}.h5ad", name=config["pretrain"]["corpus"]),
        vocab=VOCAB,
    output:
        directory(TOKEN_STORE),
    log:
        "logs/pretrain/tokenize.log",
    conda:
        ENV
    threads: 1
    resources:
        **job_resources("tokenize"),
    params:
        tokens=CELLLM.tokens.to_dict(),
    script:
        "../scripts/tokenize.py"


# The authors' released CellLM, imported from its manual sources (config `released: true`).
rule import_released:
    input:  # named by source id: the job pins each in the lock
        celllm_released=raw_file("celllm_released"),
        celllm_released_genes=raw_file("celllm_released_genes"),
        hgnc=raw_file("hgnc"),
    output:
        directory(f"results/pretrain/{RELEASED_CHECKPOINT}"),
    log:
        "logs/pretrain/import_released.log",
    conda:
        ENV
    threads: 1
    params:
        sources=source_rows(["celllm_released", "celllm_released_genes", "hgnc"]),
        lock=LOCK,
    script:
        "../scripts/import_released.py"


rule pretrain:
    input:
        store=TOKEN_STORE,
        vocab=VOCAB,
        gene_embeddings=rules.ppi.output.embeddings,
    output:
        directory("results/pretrain/{checkpoint}"),
    log:
        "logs/pretrain/{checkpoint}.log",
    wildcard_constraints:
        checkpoint="|".join(checkpoint_folders_trained_here()),
    conda:
        ENV
    threads: pretraining_threads()
    resources:
        **pretraining_resources(),
    params:
        celllm=pretraining_options,
    script:
        "../scripts/pretrain.py"
