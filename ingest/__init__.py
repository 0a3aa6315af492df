"""Data ingestion: the datasets the workflow reads, in the standard .h5ad contract.

- `download`: fetches the sources of config/datasets.tsv (checksums, resumes, manual files);
- `sources/`: one parser per source format; `catalog`: which sources make which dataset;
- `simulate`, `demo`, `pbmc`: the embedded demo's simulated data and scanpy's pbmc68k_reduced.

The model library (`celllm`) never imports this package; the benchmark suite and the
workflow do.
"""
