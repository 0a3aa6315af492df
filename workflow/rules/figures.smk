# Figures, drawn from result files only (`snakemake figures` redraws them without running a model).


rule pretrain_loss_figure:
    input:
        checkpoint=CHECKPOINT,
    output:
        png="results/figures/pretrain_losses.png",
        pdf="results/figures/pretrain_losses.pdf",
    log:
        "logs/figures/pretrain_losses.log",
    threads: 1
    conda:
        ENV
    script:
        "../scripts/pretrain_loss_figure.py"


rule figures:
    input:
        rules.pretrain_loss_figure.output,
