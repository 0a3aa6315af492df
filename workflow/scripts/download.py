from _shim import log_to_file

log_to_file(snakemake)

from celllm.data.download import fetch
from celllm.errors import InputError

url, sha256, source = snakemake.params.url, snakemake.params.sha256, snakemake.wildcards.source
if url.startswith("manual:"):
    raise InputError(f"{source}: no stable download address; get it from {url[len('manual:'):]} and save it as {snakemake.output[0]}")
fetch(url, snakemake.output[0], sha256=sha256 if len(sha256) == 64 else None, lock=snakemake.params.lock, key=source)
