from _shim import log_to_file

log_to_file(snakemake)

from pathlib import Path

from benchmarks.figures.pretraining import plot_loss_curves
from celllm.checkpoint import TRAIN_LOG

plot_loss_curves(Path(snakemake.input.checkpoint) / TRAIN_LOG, snakemake.output.png)
