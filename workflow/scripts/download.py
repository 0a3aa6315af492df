from _shim import log_to_file

log_to_file(snakemake)

from ingest.catalog import fetch_source
from ingest.download import table_sha256

p = snakemake.params
fetch_source(
    p.url, dict(snakemake.input.items()), snakemake.output[0], sha256=table_sha256(p.sha256), lock=p.lock, key=snakemake.wildcards.source
)
