# Figures, drawn from result files only: tables, run records, predictions, the embeddings
# the runs saved, training logs and perf records; no figure builds or runs a model, so
# `snakemake figures` redraws them without running one. Each figure is in the report
# (`snakemake --report`).


rule pretrain_loss_figure:
    input:
        checkpoint=CHECKPOINT,
    output:
        png=report("results/figures/pretrain_losses.png", caption="../report/pretrain_losses.rst", category="Figures"),
        pdf="results/figures/pretrain_losses.pdf",
    log:
        "logs/figures/pretrain_losses.log",
    conda:
        ENV
    threads: 1
    script:
        "../scripts/pretrain_loss_figure.py"


rule table_figure:
    input:
        table="results/tables/{task}.csv",
    output:
        png=report("results/figures/{task}.png", caption="../report/task_figure.rst", category="Figures"),
        pdf="results/figures/{task}.pdf",
    log:
        "logs/figures/{task}.log",
    conda:
        ENV
    threads: 1
    params:
        plot="benchmarks.figures.bars:plot_task",
        kwargs=table_figure_kwargs,
    script:
        "../scripts/plot.py"


# The embedding's geometry and what it encodes, from the same table (the task's detail metrics)
rule geometry_figure:
    input:
        table="results/tables/{task}.csv",
    output:
        png=report("results/figures/{task}_geometry.png", caption="../report/geometry.rst", category="Figures"),
        pdf="results/figures/{task}_geometry.pdf",
    log:
        "logs/figures/{task}_geometry.log",
    conda:
        ENV
    threads: 1
    params:
        plot="benchmarks.figures.bars:plot_task_details",
        kwargs=table_figure_kwargs,
    script:
        "../scripts/plot.py"


rule confusion_figure:
    input:
        confusion_inputs,
    output:
        png=report("results/figures/confusion_{dataset}.png", caption="../report/confusion.rst", category="Figures"),
        pdf="results/figures/confusion_{dataset}.pdf",
    log:
        "logs/figures/confusion_{dataset}.log",
    conda:
        ENV
    threads: 1
    params:
        plot="benchmarks.figures.confusion:plot_confusion",
        kwargs=confusion_figure_kwargs,
    script:
        "../scripts/plot.py"


rule scatter_figure:
    input:
        unpack(scatter_inputs),
    output:
        png=report("results/figures/scatter_{dataset}.png", caption="../report/scatter.rst", category="Figures"),
        pdf="results/figures/scatter_{dataset}.pdf",
    log:
        "logs/figures/scatter_{dataset}.log",
    conda:
        ENV
    threads: 1
    params:
        plot="benchmarks.figures.scatter:plot_predicted_vs_measured",
        kwargs=scatter_figure_kwargs,
    script:
        "../scripts/plot.py"


rule umap_figure:
    input:
        unpack(umap_inputs),
    output:
        png=report("results/figures/umap_{dataset}.png", caption="../report/umap.rst", category="Figures"),
        pdf="results/figures/umap_{dataset}.pdf",
    log:
        "logs/figures/umap_{dataset}.log",
    conda:
        ENV
    threads: 1
    params:
        plot="benchmarks.figures.embeddings:plot_embedding_umaps",
        kwargs=umap_figure_kwargs,
    script:
        "../scripts/plot.py"


rule perf_figure:
    input:
        "results/perf/{benchmark}.json",
    output:
        png=report("results/figures/perf_{benchmark}.png", caption="../report/perf_{benchmark}.rst", category="Performance"),
        pdf="results/figures/perf_{benchmark}.pdf",
    log:
        "logs/figures/perf_{benchmark}.log",
    wildcard_constraints:
        benchmark="|".join(PERF_FIGURES),
    conda:
        ENV
    threads: 1
    params:
        plot=perf_plot,
        kwargs=perf_figure_kwargs,
    script:
        "../scripts/plot.py"


rule figures:
    input:
        figure_files(),
