"""Parsers of the real data sources, one module per source format.

Each parser reads the files a download left (paths given by the caller) and
returns data in the standard contract of `celllm.io`: an AnnData with raw
counts (or the source's own normalised values, recorded in `.uns`) in a CSR
`.X`, the source's gene identifiers as `var_names` (symbols or Ensembl ids;
`celllm.genes` maps them to one symbol space), and the task labels in
named `.obs` columns. Parsers never write files and never touch the network.
"""
