from _shim import log_to_file

log_to_file(snakemake)

from celllm.data.download import fetch
from celllm.data.sources.gdsc import parse_gdsc_drug_list
from celllm.data.sources.smiles import pubchem_smiles_url

cids = parse_gdsc_drug_list(snakemake.input[0])["pubchem_cid"]
fetch(pubchem_smiles_url(cids), snakemake.output[0], lock=snakemake.params.lock, key="pubchem_smiles")
