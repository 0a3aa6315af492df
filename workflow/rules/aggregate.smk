# Run records -> results/tables/{task}.csv and .md


rule aggregate:
    input:
        lambda wildcards: run_records(wildcards.task),
    output:
        csv=report("results/tables/{task}.csv", caption="../report/table.rst", category="Tables", subcategory="{task}"),
        md="results/tables/{task}.md",
    log:
        "logs/tables/{task}.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/aggregate.py"
