from _shim import log_to_file

log_to_file(snakemake)

import torch

from benchmarks.recipe import PCA, score_checkpoint, score_pca, write_scores

torch.set_num_threads(snakemake.threads)
given, name = snakemake.input, snakemake.wildcards.variant
paths = {"cells": given.cells, "corpus": given.corpus, "pbmc": given.pbmc}
scores = score_pca(paths) if name == PCA else score_checkpoint(given.checkpoint, paths)
write_scores(snakemake.output[0], name, scores)
