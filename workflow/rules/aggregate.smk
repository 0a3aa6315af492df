# Run records -> results/tables/{task}.csv and .md


rule aggregate:
    input:
        task_run_records,
    output:
        csv=report("results/tables/{task}.csv", caption="../report/table.rst", category="Tables", subcategory="{task}"),
        md="results/tables/{task}.md",
    log:
        "logs/tables/{task}.log",
    conda:
        ENV
    threads: 1
    script:
        "../scripts/aggregate.py"


# The tables' numbers with the commit and machine they came from (the README quotes this file)
rule summary:
    input:
        tables=expand("results/tables/{task}.csv", task=list(config["tasks"])),
        records=[record for task in config["tasks"] for record in run_records(task)],
    output:
        "results/summary.md",
    log:
        "logs/summary.log",
    conda:
        ENV
    threads: 1
    script:
        "../scripts/summary.py"


# Evaluation cells that are exact duplicates of pretraining cells (benchmarks/contamination.py):
# each dataset a task scores, fingerprinted against the token store's corpus; zero included.
# And the same datasets' public samples found in the corpus by accession (benchmarks/accessions.py):
# benchmarks/accessions.tsv against the corpus datasets' sample names.
rule contamination:
    input:
        store=TOKEN_STORE,
        data=expand("results/data/{dataset}.h5ad", dataset=evaluation_datasets()),
        corpus=expand("results/data/{name}.h5ad", name=config["pretrain"]["corpus"]),
    output:
        csv=report(CONTAMINATION[0], caption="../report/contamination.rst", category="Tables"),
        md=CONTAMINATION[1],
        accessions_csv=report(CONTAMINATION[2], caption="../report/contamination_accessions.rst", category="Tables"),
        accessions_md=CONTAMINATION[3],
    log:
        "logs/tables/contamination.log",
    conda:
        ENV
    threads: 1
    params:  # the accession table ships with the code: its content, not its path, decides a re-run
        accessions_sha256=file_sha256(EVALUATION_ACCESSIONS),
    script:
        "../scripts/contamination.py"
