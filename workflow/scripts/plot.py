from _shim import log_to_file

log_to_file(snakemake)

import importlib

module, function = snakemake.params.plot.split(":")
getattr(importlib.import_module(module), function)(**snakemake.params.kwargs, png=snakemake.output.png)
