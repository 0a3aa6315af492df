# Real data: every file of config/datasets.tsv is fetched once into results/raw/{source}/
# (streamed, resumed, retried, checksum-verified, renamed only when complete),
# and a parse rule turns a dataset's files (archives are read in place) into
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
        lambda wildcards: raw_file("gdsc_drug_list"),
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


rule parse_dataset:
    input:
        unpack(source_inputs),
        hgnc=lambda wildcards: raw_file("hgnc"),
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
        hgnc=lambda wildcards: raw_file("hgnc"),
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
        links=lambda wildcards: raw_file("string_links"),
        info=lambda wildcards: raw_file("string_info"),
        hgnc=lambda wildcards: raw_file("hgnc"),
    output:
        "results/data/string_human.tsv",
    log:
        "logs/data/string_human.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/string_ppi.py"
