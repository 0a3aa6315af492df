from _shim import log_to_file

log_to_file(snakemake)

from ingest.catalog import resolve_address
from ingest.download import fetch, table_sha256

p = snakemake.params
url = resolve_address(p.url, dict(snakemake.input.items()))
fetch(url, snakemake.output[0], sha256=table_sha256(p.sha256), lock=p.lock, key=snakemake.wildcards.source)
