from _shim import log_to_file

log_to_file(snakemake)

from celllm.genes import GeneSymbols
from celllm.outputs import atomic_path
from celllm.tokens import Vocabulary

hgnc = snakemake.input.get("hgnc")
keep = GeneSymbols.from_hgnc(hgnc).protein_coding if hgnc else None
with atomic_path(snakemake.output[0]) as tmp:
    Vocabulary.from_datasets(snakemake.input.corpus, keep=keep).save(tmp)
