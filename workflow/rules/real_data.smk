# Real data: every file of config/datasets.tsv is fetched once into resources/{source}/
# (streamed, resumed, retried, checksum-verified, renamed only when complete; a
# `manual:` row stops with where to get the file and where to save it), and a parse
# rule turns a dataset's files (archives are read in place) into results/data/{dataset}.h5ad
# in the standard contract (ingest/catalog.py), with its data ledger: what each step kept
# and lost, and why (results/data/{dataset}.ledger.tsv; a loss above `data.max_loss` stops
# the parse unless `data.accept` names it with a reason). Every parse first verifies its
# raw files against the lock, pinning a file placed by hand on its first use.
# `retries: 0`, whatever a profile says: fetch retries what can succeed on a second try, and a
# `manual:` row must stop once with its message, not be asked again.
rule download:
    input:
        unpack(address_inputs),
    output:
        "resources/{source}/{filename}",
    log:
        "logs/resources/{source}/{filename}.log",
    wildcard_constraints:
        source="|".join(SOURCES.index),
        filename=r"[^/]+",
    retries: 0
    conda:
        ENV
    threads: 1
    params:
        url=source_url,
        sha256=source_sha256,
        lock=LOCK,
    script:
        "../scripts/download.py"


rule parse_dataset:
    input:
        unpack(source_inputs),
        hgnc=raw_file("hgnc"),
    output:
        data="results/data/{dataset}.h5ad",
        ledger=report("results/data/{dataset}.ledger.tsv", caption="../report/ledger.rst", category="Data", subcategory="{dataset}"),
    log:
        "logs/data/{dataset}.log",
    wildcard_constraints:
        dataset="|".join(n for n, e in CATALOG.items() if not e.response),
    conda:
        ENV
    threads: 1
    params:
        sources=dataset_source_rows,
        lock=LOCK,
        losses=LOSSES,
        max_len=MAX_LEN,
    script:
        "../scripts/parse_dataset.py"


rule parse_drug_response_dataset:
    input:
        unpack(source_inputs),
        hgnc=raw_file("hgnc"),
    output:
        data="results/data/{dataset}.h5ad",
        response="results/data/{dataset}.response.tsv",
        ledger=report("results/data/{dataset}.ledger.tsv", caption="../report/ledger.rst", category="Data", subcategory="{dataset}"),
    log:
        "logs/data/{dataset}.log",
    wildcard_constraints:
        dataset="|".join(n for n, e in CATALOG.items() if e.response),
    conda:
        ENV
    threads: 1
    params:
        sources=dataset_source_rows,
        lock=LOCK,
        losses=LOSSES,
        max_len=MAX_LEN,
    script:
        "../scripts/parse_dataset.py"


rule string_ppi:
    input:
        string_links=raw_file("string_links"),
        string_info=raw_file("string_info"),
        hgnc=raw_file("hgnc"),
    output:
        edges=f"results/data/{STRING_EDGES}.tsv",
        ledger=report(f"results/data/{STRING_EDGES}.ledger.tsv", caption="../report/ledger.rst", category="Data", subcategory=STRING_EDGES),
    log:
        f"logs/data/{STRING_EDGES}.log",
    conda:
        ENV
    threads: 1
    params:
        sources=source_rows(["string_links", "string_info", "hgnc"]),
        lock=LOCK,
    script:
        "../scripts/string_ppi.py"
