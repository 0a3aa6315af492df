# Real data: every file of config/datasets.tsv is fetched once into results/raw/{source}/
# (streamed, resumed, retried, checksum-verified, renamed only when complete),
# archives are unpacked beside it, and a parse rule turns a dataset's files into
# results/data/{dataset}.h5ad in the standard contract (celllm/data/catalog.py).
rule download:
    output:
        "results/raw/{source}/{filename}",
    params:
        url=lambda wildcards: SOURCES.loc[wildcards.source, "url"],
        sha256=lambda wildcards: SOURCES.loc[wildcards.source, "sha256"],
        lock=LOCK,
    wildcard_constraints:
        source="|".join(SOURCES.index),
        filename=r"[^/]+",
    log:
        "logs/raw/{source}/{filename}.log",
    threads: 1
    retries: 1
    conda:
        ENV
    script:
        "../scripts/download.py"


rule pubchem_smiles:
    input:
        raw_file("gdsc_drug_list"),
    output:
        DERIVED["pubchem_smiles"],
    params:
        lock=LOCK,
    log:
        "logs/raw/pubchem_smiles.log",
    threads: 1
    retries: 1
    conda:
        ENV
    script:
        "../scripts/pubchem_smiles.py"


rule unpack:
    input:
        lambda wildcards: raw_file(wildcards.source),
    output:
        directory("results/raw/{source}/unpacked"),
    wildcard_constraints:
        source="|".join(SOURCES.index),
    log:
        "logs/raw/{source}/unpack.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/unpack.py"


rule parse_dataset:
    input:
        unpack(source_inputs),
        hgnc=raw_file("hgnc"),
    output:
        "results/data/{dataset}.h5ad",
    wildcard_constraints:
        dataset="|".join(n for n, e in CATALOG.items() if not e.response),
    log:
        "logs/data/{dataset}.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/parse_dataset.py"


rule parse_drug_response_dataset:
    input:
        unpack(source_inputs),
        hgnc=raw_file("hgnc"),
    output:
        data="results/data/{dataset}.h5ad",
        response="results/data/{dataset}.response.tsv",
    wildcard_constraints:
        dataset="|".join(n for n, e in CATALOG.items() if e.response),
    log:
        "logs/data/{dataset}.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/parse_dataset.py"


rule string_ppi:
    input:
        links=raw_file("string_links"),
        info=raw_file("string_info"),
        hgnc=raw_file("hgnc"),
    output:
        "results/data/string_human.tsv",
    log:
        "logs/data/string_human.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/string_ppi.py"
