"""The `celllm` command: pretrain a model, embed cells."""

from __future__ import annotations

import argparse
import logging
import sys

from celllm.errors import InputError


def _pretrain(args) -> None:
    from celllm.config import CellLMConfig
    from celllm.pretrain.corpus import load_corpus
    from celllm.ppi import read_gene_embeddings
    from celllm.pretrain.distributed import group_from_environment
    from celllm.pretrain.trainer import pretrain
    from celllm.tokens import Vocabulary

    cfg = CellLMConfig.load(args.config) if args.config else CellLMConfig()
    cfg = cfg.with_pretrain(batch_size=args.batch_size, sub_batch_size=args.sub_batch_size, sub_batch_tokens=args.sub_batch_tokens,
                            max_steps=args.max_steps, seed=args.seed)
    vocab = Vocabulary.load(args.vocab) if args.vocab else None
    group = group_from_environment()  # several processes under torchrun, else one
    corpus = load_corpus(args.data, cfg.tokens, vocab)
    genes = read_gene_embeddings(args.gene_embeddings, corpus.vocab.genes) if args.gene_embeddings else None
    out = pretrain(corpus, args.out, cfg, resume=args.resume, device=args.device, progress=not args.quiet, group=group, gene_embeddings=genes)
    if group.rank == 0:
        print(f"checkpoint written to {out}")


def _embed(args) -> None:
    from celllm.embed import OBSM_KEY, embed_file

    dropped = embed_file(args.input, args.checkpoint, args.out, args.batch_size, args.device, progress=not args.quiet)
    print(f"wrote .obsm['{OBSM_KEY}'] to {args.out} ({dropped} genes outside the vocabulary dropped)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="celllm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("pretrain", help="pretrain CellLM on one or more .h5ad corpora")
    p.add_argument("--data", action="append", required=True, metavar="CORPUS.h5ad", help="pretraining data; repeat for several files")
    p.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder to write")
    p.add_argument("--config", metavar="FILE", help="model/training config (YAML or JSON; a checkpoint's config.json works)")
    p.add_argument("--vocab", metavar="FILE", help="gene vocabulary, one symbol per line (default: genes of --data in order)")
    p.add_argument("--gene-embeddings", metavar="FILE.npz", help="gene embedding table (e.g. GraphMAE on a PPI network) for phi_G")
    p.add_argument("--batch-size", type=int, help="cells per optimizer step (contrastive batch)")
    p.add_argument("--sub-batch-size", type=int, help="cells per forward pass (memory only; results do not change)")
    p.add_argument("--sub-batch-tokens", type=int, help="also cap each forward pass at this many padded tokens (flat memory)")
    p.add_argument("--max-steps", type=int, help="optimizer steps")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=_pretrain)

    e = commands.add_parser("embed", help="write CellLM cell embeddings to .obsm['X_celllm']")
    e.add_argument("input", metavar="IN.h5ad")
    e.add_argument("--checkpoint", required=True, metavar="DIR")
    e.add_argument("--out", required=True, metavar="OUT.h5ad")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--device")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(run=_embed)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        args.run(args)
    except InputError as exc:
        print(f"celllm: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
