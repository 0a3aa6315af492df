from _shim import log_to_file

log_to_file(snakemake)

from ingest.catalog import build_dataset
from ingest.download import pin_sources
from ingest.ledger import LossPolicy

pin_sources(dict(snakemake.input.items()), snakemake.params.sources, snakemake.params.lock)
files = {name: path for name, path in snakemake.input.items() if name != "hgnc"}
out = snakemake.output
build_dataset(
    snakemake.wildcards.dataset,
    files,
    snakemake.input.hgnc,
    out.data,
    out.get("response"),
    out.ledger,
    LossPolicy.from_config(snakemake.params.losses),
    snakemake.params.max_len,
)
