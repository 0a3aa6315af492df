from _shim import log_to_file

log_to_file(snakemake)

import json
import sys

import torch

from celllm.checkpoint import progress_folder, publish_checkpoint
from celllm.config import CellLMConfig
from celllm.pretrain.launch import processes, run_distributed
from celllm.pretrain.run import pretrain_from_files

# The checkpoint trains in a progress folder with resume, so a killed job, run again,
# continues from its last periodic checkpoint; the output appears only when training is done.
given, celllm = snakemake.input, snakemake.params.celllm
per_node, nodes = snakemake.config["pretrain"]["processes_per_node"], snakemake.config["pretrain"]["nodes"]
threads = max(1, snakemake.threads // per_node)  # the job's threads, shared by the processes of a node
progress = progress_folder(snakemake.output[0], [given.vocab, given.gene_embeddings, f"{given.store}/manifest.json"], settings=celllm)
cfg = CellLMConfig.from_dict(celllm, f"rule {snakemake.rule}: params.celllm")
if processes(per_node, nodes) == 1:
    torch.set_num_threads(threads)
    pretrain_from_files([given.store], progress, cfg, vocab=given.vocab, gene_embeddings=given.gene_embeddings, resume=True)
else:  # the same run through `celllm pretrain` on every process (torchrun), its config in a file beside
    # the progress folder, named after it, so that a killed job's copy is the one the resumed job rewrites
    config = progress.with_name(f"{progress.name}.config.json")
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(json.dumps(cfg.to_dict()))
    argv = ["pretrain", "--data", given.store, "--out", str(progress), "--config", str(config), "--vocab", given.vocab]
    argv += ["--gene-embeddings", given.gene_embeddings, "--resume", "--quiet", "--threads", str(threads)]
    try:
        run_distributed(argv, per_node, nodes, threads, output=sys.stdout)
    finally:
        config.unlink()
publish_checkpoint(progress, snakemake.output[0])
