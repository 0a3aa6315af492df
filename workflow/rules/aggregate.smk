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
