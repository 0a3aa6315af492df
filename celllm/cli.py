"""The `celllm` command: tokenize a corpus, pretrain a model, import the released one, embed cells.

Every bad input stops the command with one line on stderr (`celllm: error: ...`)
and exit status 2, before anything is written: options are range-checked when
parsed, and outputs are checked before any work (`celllm.outputs`: a folder is
replaced only when its record says it is of the same kind and it holds nothing
else; never an input; writable).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from celllm.errors import InputError

log = logging.getLogger(__name__)


def _integer(low: int, what: str):
    """An argparse type: an integer >= `low`, described as `what` in the message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what}, not '{text}'") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {what}, not {text}")
        return value

    return parse


POSITIVE = _integer(1, "a positive integer")
NON_NEGATIVE = _integer(0, "an integer >= 0")


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity: what taskset, SLURM or a container grant), else all."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _use_threads(threads: int | None) -> None:
    """torch's intra-op threads: `threads`, else OMP_NUM_THREADS where a launcher set it (torchrun gives each of
    several ranks 1), else the cores this process is given."""
    import torch

    given = os.environ.get("OMP_NUM_THREADS", "")
    torch.set_num_threads(threads or (int(given) if given.isdigit() and int(given) > 0 else available_cores()))


def _device(name: str) -> str:
    """An argparse type: a torch device that exists on this machine."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"'{name}' is not a torch device (cpu, cuda, cuda:1, ...)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"'{name}': no CUDA device is available here")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"'{name}': this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda"):
        raise argparse.ArgumentTypeError(f"'{name}': only cpu and cuda devices are supported")
    return name


class _OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors on one line like every other error of the command."""

    def error(self, message):
        self.exit(2, f"celllm: error: {message} (see `{self.prog} --help`)\n")


def _pretrain(args) -> None:
    from celllm.checkpoint import CONFIG
    from celllm.config import CellLMConfig
    from celllm.pretrain.run import pretrain_from_files

    _use_threads(args.threads)
    # resuming without --config continues with the checkpoint's own options
    own = Path(args.out) / CONFIG
    base = args.config or (own if args.resume and own.exists() else None)
    cfg = CellLMConfig.load(base) if base else CellLMConfig()
    cfg = cfg.with_pretrain(
        batch_size=args.batch_size,
        sub_batch_size=args.sub_batch_size,
        sub_batch_tokens=args.sub_batch_tokens,
        max_steps=args.max_steps,
        seed=args.seed,
    )
    out = pretrain_from_files(
        args.data,
        args.out,
        cfg,
        vocab=args.vocab,
        gene_embeddings=args.gene_embeddings,
        resume=args.resume,
        device=args.device,
        progress=not args.quiet,
        scale_check=not args.skip_scale_check,
        store_hashes=not args.skip_store_hashes,
        accept_edited_config=args.accept_edited_config,
        other_inputs=[args.config] if args.config else [],
    )
    if out is not None:
        print(f"checkpoint written to {out}")


def _tokenize(args) -> None:
    from celllm.config import CellLMConfig
    from celllm.outputs import check_output_folder
    from celllm.pretrain.store import BLOCK_CELLS, KIND, build_token_store
    from celllm.tokens import Vocabulary

    out = check_output_folder(args.out, KIND, [*args.data, args.config, args.vocab])
    cfg = CellLMConfig.load(args.config) if args.config else CellLMConfig()
    vocab = Vocabulary.load(args.vocab) if args.vocab else Vocabulary.from_datasets(args.data)
    build_token_store(
        args.data,
        out,
        vocab,
        cfg.tokens,
        block_cells=args.block_cells or BLOCK_CELLS,
        scale_check=not args.skip_scale_check,
        progress=not args.quiet,
    )
    print(f"token store written to {out}")


def _import_released(args) -> None:
    from celllm.released import import_released

    report = import_released(args.checkpoint, args.genes, args.out, hgnc=args.hgnc, **({"max_len": args.max_len} if args.max_len else {}))
    genes = report["genes"]
    mapped = (
        f"{genes['renamed']} renamed to approved symbols, {genes['unknown']} unknown" if genes["mapped"] else "names as given (no --hgnc)"
    )
    print(f"imported {report['released_parameters']:,} parameters and {report['sizes']['n_genes']:,} genes ({mapped}) to {args.out}")


def _embed(args) -> None:
    from celllm.embed import OBSM_KEY, embed_file, written_by_embed
    from celllm.outputs import check_output_file

    out = check_output_file(args.out, ".h5ad", [args.input, args.checkpoint], what="--out", owned=written_by_embed)
    _use_threads(args.threads)
    dropped = embed_file(
        args.input,
        args.checkpoint,
        out,
        args.batch_size,
        args.device,
        progress=not args.quiet,
        scale_check=not args.skip_scale_check,
        accept_edited_config=args.accept_edited_config,
    )
    print(f"wrote .obsm['{OBSM_KEY}'] to {args.out} ({dropped} genes outside the vocabulary dropped)")


SCALE_HELP = "accept expression that does not look like counts (log-transformed, binary): only if you know it is right"
EDITED_HELP = "use a checkpoint whose config.json was edited after it was written (the log says what changed)"


VOCAB_HELP = "gene vocabulary, one symbol per line (default: genes of --data in order)"


THREADS_HELP = "CPU threads for the model (default: OMP_NUM_THREADS if set, else the cores this process is given by its CPU affinity)"


def _reading_options(command) -> None:
    """The options of every command that reads expression: the scale check and the progress bar."""
    command.add_argument("--skip-scale-check", action="store_true", help=SCALE_HELP)
    command.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="celllm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)

    p = commands.add_parser("pretrain", help="pretrain CellLM on one or more .h5ad corpora")
    p.add_argument(
        "--data",
        action="append",
        required=True,
        metavar="CORPUS.h5ad|STORE",
        help="pretraining data: .h5ad files (repeat for several), or one token store made by `celllm tokenize`",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder to write (new, or a checkpoint to replace or --resume)")
    p.add_argument("--config", metavar="FILE", help="model/training config (YAML or JSON; a checkpoint's config.json works)")
    p.add_argument("--vocab", metavar="FILE", help=VOCAB_HELP)
    p.add_argument("--gene-embeddings", metavar="FILE.npz", help="gene embedding table (e.g. GraphMAE on a PPI network) for phi_G")
    p.add_argument("--batch-size", type=_integer(2, "an integer >= 2"), help="cells per optimizer step (contrastive batch)")
    p.add_argument("--sub-batch-size", type=POSITIVE, help="cells per forward pass (memory only; results do not change)")
    p.add_argument("--sub-batch-tokens", type=NON_NEGATIVE, help="also cap each forward pass at this many padded tokens (flat memory)")
    p.add_argument("--max-steps", type=NON_NEGATIVE, help="optimizer steps")
    p.add_argument("--seed", type=NON_NEGATIVE, help="random seed")
    p.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint in --out (with its options unless --config is given)"
    )
    p.add_argument("--accept-edited-config", action="store_true", help=EDITED_HELP)
    p.add_argument(
        "--skip-store-hashes",
        action="store_true",
        help="do not check a token store's files against their SHA-256 before training (its other checks still run)",
    )
    p.add_argument("--device", type=_device, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--threads", type=POSITIVE, help=THREADS_HELP)
    _reading_options(p)
    p.set_defaults(run=_pretrain)

    t = commands.add_parser("tokenize", help="tokenize .h5ad corpora once into a token store (memory-mapped) for pretrain --data")
    t.add_argument("--data", action="append", required=True, metavar="CORPUS.h5ad", help="a file to tokenize; repeat for several")
    t.add_argument("--out", required=True, metavar="DIR", help="token store folder to write")
    t.add_argument("--config", metavar="FILE", help="config whose tokens section applies (default: the default tokens options)")
    t.add_argument("--vocab", metavar="FILE", help=VOCAB_HELP)
    t.add_argument(
        "--block-cells",
        type=POSITIVE,
        help="cells read and tokenized at once (memory follows it; default: celllm.pretrain.store.BLOCK_CELLS)",
    )
    _reading_options(t)
    t.set_defaults(run=_tokenize)

    r = commands.add_parser("import-released", help="turn the authors' released CellLM weights into a checkpoint folder")
    r.add_argument("checkpoint", metavar="CKPT.pth", help="a released file (checkpoint4_fixed.pth, ckpt.pth, nocls_fixed.pth)")
    r.add_argument(
        "--genes",
        required=True,
        metavar="GENES",
        help="the gene of each row of its gene table: a text file, one per line, or an .h5ad (var_names)",
    )
    r.add_argument("--out", required=True, metavar="DIR", help="checkpoint folder to write")
    r.add_argument("--hgnc", metavar="HGNC.txt", help="HGNC complete set, to map the genes to today's approved symbols")
    r.add_argument(
        "--max-len", type=_integer(2, "an integer >= 2"), help="tokens per cell the released model pads to (default: the released 6,000)"
    )
    r.set_defaults(run=_import_released)

    e = commands.add_parser("embed", help="write CellLM cell embeddings to .obsm['X_celllm']")
    e.add_argument("input", metavar="IN.h5ad")
    e.add_argument("--checkpoint", required=True, metavar="DIR")
    e.add_argument("--out", required=True, metavar="OUT.h5ad", help="a new .h5ad (an existing .h5ad other than the input is replaced)")
    e.add_argument(
        "--batch-size",
        type=POSITIVE,
        help="cells per forward pass (default 64; an imported released model: 32 in the "
        "file's order, the authors' inference batch, since its attention looks across the batch)",
    )
    e.add_argument("--device", type=_device)
    e.add_argument("--threads", type=POSITIVE, help=THREADS_HELP)
    e.add_argument("--accept-edited-config", action="store_true", help=EDITED_HELP)
    _reading_options(e)
    e.set_defaults(run=_embed)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad option already reported on one line
        return int(exc.code or 0)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    try:
        args.run(args)
    except InputError as exc:
        print(f"celllm: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
