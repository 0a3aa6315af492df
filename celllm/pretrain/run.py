"""One pretraining from files to a checkpoint folder: the body of `celllm pretrain`.

The command line builds the CellLMConfig (a --config file and option overrides);
the workflow's pretrain job hands over the one it resolved from its config. Both
then run this: the output folder checked before any work, the corpus (h5ad files
or a token store) and the gene embeddings read, the trainer run.
"""

from __future__ import annotations

import logging
from pathlib import Path

from celllm.config import CellLMConfig

log = logging.getLogger(__name__)


def pretrain_from_files(
    data: list,
    out,
    cfg: CellLMConfig,
    *,
    vocab=None,
    gene_embeddings=None,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    scale_check: bool = True,
    store_hashes: bool = True,
    accept_edited_config: bool = False,
    other_inputs=(),
) -> Path | None:
    """Pretrain `cfg` on `data` into the checkpoint folder `out` (continued with `resume`).

    `other_inputs` are further files the run read (a config file) that `out` must not
    hold; a checkpoint's own config.json and vocab.txt may be given back to it. Returns
    the folder on the process that wrote it (rank 0), None on the others.
    """
    from celllm.checkpoint import CONFIG, KIND, VOCAB, is_checkpoint
    from celllm.outputs import check_output_folder
    from celllm.ppi import read_gene_embeddings
    from celllm.pretrain.corpus import load_corpus
    from celllm.pretrain.distributed import group_from_environment
    from celllm.pretrain.trainer import pretrain
    from celllm.tokens import Vocabulary

    own = {(Path(out) / name).resolve() for name in (CONFIG, VOCAB)}  # rewritten as they are
    inputs = [*data, gene_embeddings, *(p for p in (vocab, *other_inputs) if p and Path(p).resolve() not in own)]
    out = check_output_folder(out, KIND, inputs, keep=resume)
    if is_checkpoint(out) and not resume:
        log.warning("%s: holds a checkpoint, which this run replaces when it saves (--resume continues it instead)", out)
    group = group_from_environment()  # several processes under torchrun, else one
    corpus = load_corpus(data, cfg.tokens, Vocabulary.load(vocab) if vocab else None, scale_check=scale_check, store_hashes=store_hashes)
    genes = read_gene_embeddings(gene_embeddings, corpus.vocab.genes, dim=cfg.encoder.dim) if gene_embeddings else None
    written = pretrain(
        corpus,
        out,
        cfg,
        resume=resume,
        device=device,
        progress=progress,
        group=group,
        gene_embeddings=genes,
        accept_edited_config=accept_edited_config,
    )
    return written if group.rank == 0 else None
