"""Performance benchmarks of the CellLM encoder and its pretraining step.

Each module measures one claim and writes one JSON file (plus a printed table):

- `benchmarks.perf.dnc`: peak memory and seconds per optimizer step against
  batch size, full-batch step versus divide-and-conquer (gradient caching).
- `benchmarks.perf.tokens`: training throughput (cells/s) when the encoder reads
  only the non-zero genes (CellLM), non-zero genes padded to a fixed length
  (released code), or every gene including zeros (scBERT).
- `benchmarks.perf.gpu`: the paper-size model's bf16 training step on CUDA:
  cells/s and model FLOP/s as a fraction of the GPU's peak.
- `benchmarks.perf.corpus`: at the paper's corpus shape, the token store (cells/s,
  peak memory, bytes per token), each rank's private memory while pretraining
  reads it, batch preparation per step, and `celllm embed`'s peak memory.
- `benchmarks.perf.embedding`: seconds of each zero-shot embedding metric against
  the number of cells, extrapolated to Zheng68k and Baron.
- `benchmarks.perf.released_batch`: how far the released attention's batch-wide
  key stabiliser moves a cell's [CLS] (authors' batches of 32 against a max per
  cell and head, shuffled batches, batches of 1 and 64), with the demo's trained
  weights and a random model at the paper's head size, and whether a linear
  probe's annotation metrics move beyond their seed spread. It reads the
  datasets and the checkpoint (`results/data/`, `results/pretrain/`).

Run one with `python -m benchmarks.perf.<name> --out results/perf/<name>.json`,
or all of them with `snakemake --cores N perf`. Shared helpers (synthetic
tokens, timing, peak memory, output) live in `benchmarks.perf.common`.
"""

BENCHMARKS = ("dnc", "tokens", "gpu", "corpus", "embedding", "released_batch")
FIGURES = ("dnc", "tokens")  # the benchmarks drawn by benchmarks.figures.perf (plot_<name>)
