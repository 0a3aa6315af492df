"""The token store: a pretraining corpus tokenized once, as memory-mapped arrays on disk.

Layout of a store folder (written atomically by `build_token_store`):

    manifest.json   format, counts, dtypes, the tokens config, the vocabulary's SHA-256,
                    and each source file with its cells and the genes it lost to the vocabulary
    celllm-record.json  the SHA-256 of every file (`celllm.outputs`), checked before training
    vocab.txt       the vocabulary, one gene per line
    offsets.bin     int64, n_cells + 1: cell i's tokens are [offsets[i], offsets[i + 1])
    gene_ids.bin    the smallest unsigned integer type that holds the vocabulary (uint16 up to 65,534 genes)
    bins.bin        uint8 expression bins
    tissue.bin      int8 per cell: 0 normal, 1 tumor, IGNORE unknown
    cell_hash.bin   uint64 per cell: a fingerprint of its counts (`cell_fingerprints`), so that
                    an evaluation dataset's cells can be looked up in the corpus (contamination)

Every process that reads a store maps the same files, so the operating system
keeps one copy in its page cache for all of them: the memory of a rank does not
grow with the corpus. Tokenizing reads the .h5ad files a block of cells at a
time (`celllm.io.DatasetBlocks`), so building a store needs memory for one
block, not for the corpus. A store is refused by a run whose vocabulary or
tokens config differs from the one it was built with, and checked whole before
the first step (`TokenStore.verify`: hashes, offsets in order, ids within the
vocabulary, bins within range), a chunk at a time. The same layout is
Geneformer's and BioNeMo's idea (a tokenized corpus read in place), kept here to
four flat arrays because that is all a CellLM cell is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from celllm.errors import InputError
from celllm.io import DatasetBlocks
from celllm.outputs import atomic_path, verify_record, write_record
from celllm.pretrain.objectives import IGNORE, tissue_codes
from celllm.tokens import TokenConfig, TokenizedCells, Vocabulary, in_vocabulary_order, pad_gene_id, tokenize, vocabulary_columns

log = logging.getLogger(__name__)

FORMAT = "celllm-token-store/3"
KIND = "token store"  # its kind in the folder's record
MANIFEST, VOCAB = "manifest.json", "vocab.txt"
ARRAYS = {"offsets": "offsets.bin", "gene_ids": "gene_ids.bin", "bins": "bins.bin", "tissue": "tissue.bin", "cell_hash": "cell_hash.bin"}
BLOCK_CELLS = 8192  # cells tokenized at once: ~12M tokens of paper-like cells, a few hundred MB at most
VERIFY_CHUNK = 1 << 24  # array elements read at once when verifying a store


def gene_id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every gene id, [CLS] and PAD (the largest, `pad_gene_id`)."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if pad_gene_id(vocab_size) <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    return np.dtype(np.uint64)


def is_token_store(path) -> bool:
    return (Path(path) / MANIFEST).is_file()


def cell_fingerprints(X: sp.csr_matrix, genes, vocab: Vocabulary) -> np.ndarray:
    """A uint64 per cell: BLAKE2b of its (vocabulary id, count) pairs over the vocabulary's genes, in id order.

    Two cells with the same counts of the same genes get the same fingerprint whatever the
    gene order of their files, and a cell expressing no vocabulary gene gets 0 (never matched).
    Counts are compared as float32, the way every dataset of the suite stores them.
    """
    X = in_vocabulary_order(sp.csr_matrix(X, dtype=np.float32), vocabulary_columns(genes, vocab), len(vocab))
    ids, values = X.indices.astype("<u4"), X.data.astype("<f4")
    out = np.zeros(X.shape[0], dtype=np.uint64)
    for row, (start, stop) in enumerate(zip(X.indptr[:-1], X.indptr[1:])):
        if stop > start:
            digest = hashlib.blake2b(ids[start:stop].tobytes() + values[start:stop].tobytes(), digest_size=8).digest()
            out[row] = int.from_bytes(digest, "little") or 1  # 0 is kept for cells without a vocabulary gene
    return out


def tokenized_blocks(
    paths,
    vocab: Vocabulary,
    cfg: TokenConfig,
    block_cells: int = BLOCK_CELLS,
    scale_check: bool = True,
    progress: bool = False,
    fingerprints: bool = False,
) -> Iterator[tuple[str, TokenizedCells, np.ndarray, np.ndarray | None]]:
    """(file, tokens, tissue codes, cell fingerprints if asked for) of each block of cells of the .h5ad files `paths`, in order.

    Reads a block at a time, so memory follows the block. A file without a `tissue`
    column gets IGNORE codes, with a warning (its cells train every objective but tumor/normal);
    the genes of each file outside the vocabulary are counted in a warning.
    """
    if not paths:
        raise InputError("no pretraining data given (use --data FILE.h5ad or --data TOKEN_STORE)")
    resolved = [Path(p).resolve() for p in paths]
    twice = next((p for p, r in zip(paths, resolved) if resolved.count(r) > 1), None)
    if twice is not None:
        raise InputError(f"{twice}: given twice as data; each file is read once")
    for path in paths:
        with DatasetBlocks(path, scale_check=scale_check) as dataset:
            if "tissue" in dataset.obs:
                tissue = tissue_codes(dataset.obs["tissue"].to_numpy(), str(path))
            else:
                log.warning("%s: no 'tissue' column, so its %d cells do not train the tumor/normal objective", path, dataset.n_obs)
                tissue = np.full(dataset.n_obs, IGNORE, dtype=np.int64)
            with tqdm(total=dataset.n_obs, desc=f"tokenize {Path(path).name}", unit="cell", disable=not progress) as bar:
                for start, X in dataset.blocks(block_cells):
                    cells = tokenize(X, dataset.var_names, vocab, cfg, str(path))
                    if start == 0 and cells.n_dropped_genes:  # every block of a file drops the same genes
                        log.warning(
                            "%s: %d of its %d genes are not in the %d-gene vocabulary and are dropped",
                            path,
                            cells.n_dropped_genes,
                            len(dataset.var_names),
                            len(vocab),
                        )
                    fingerprint = cell_fingerprints(X, dataset.var_names, vocab) if fingerprints else None
                    yield str(path), cells, tissue[start : start + len(cells)], fingerprint
                    bar.update(len(cells))


def report_cells(cells: TokenizedCells, what: str, vocab: Vocabulary, cfg: TokenConfig) -> None:
    """Log the cells with no vocabulary gene and the cells cut at max_len; InputError if no cell has a token."""
    empty = int((cells.lengths() == 0).sum())
    if empty == len(cells):
        raise InputError(f"no cell of {what} expresses a gene of the {len(vocab)}-gene vocabulary")
    if empty:
        log.warning("%d of %d cells of %s express no vocabulary gene; they are kept as [CLS]-only cells", empty, len(cells), what)
    if cells.n_truncated_cells:
        log.info(
            "%d of %d cells of %s have more than %d expressed genes and are cut (%s)",
            cells.n_truncated_cells,
            len(cells),
            what,
            cfg.max_len - 1,
            cfg.truncation,
        )


def build_token_store(
    paths, out, vocab: Vocabulary, cfg: TokenConfig, block_cells: int = BLOCK_CELLS, scale_check: bool = True, progress: bool = True
) -> Path:
    """Tokenize the .h5ad files `paths` (in order) into the store folder `out`, a block of cells at a time."""
    gene_dtype = gene_id_dtype(len(vocab))
    out = Path(out)
    n_tokens, n_truncated, sources = 0, 0, {}
    offsets, tissues, fingerprints = [np.zeros(1, dtype=np.int64)], [], []
    with atomic_path(out) as tmp:
        tmp.mkdir()
        with open(tmp / ARRAYS["gene_ids"], "wb") as genes_file, open(tmp / ARRAYS["bins"], "wb") as bins_file:
            for path, cells, tissue, fingerprint in tokenized_blocks(paths, vocab, cfg, block_cells, scale_check, progress, True):
                genes_file.write(cells.gene_ids.astype(gene_dtype).tobytes())
                bins_file.write(cells.bins.astype(np.uint8).tobytes())
                offsets.append(cells.indptr[1:] + n_tokens)
                tissues.append(tissue.astype(np.int8))
                fingerprints.append(fingerprint)
                n_tokens += int(cells.indptr[-1])
                n_truncated += cells.n_truncated_cells
                source = sources.setdefault(path, {"path": path, "n_cells": 0, "n_dropped_genes": cells.n_dropped_genes})
                source["n_cells"] += len(cells)
        offsets = np.concatenate(offsets)
        report_cells(
            TokenizedCells(offsets, np.zeros(0), np.zeros(0), n_truncated_cells=n_truncated), ", ".join(map(str, paths)), vocab, cfg
        )
        offsets.tofile(tmp / ARRAYS["offsets"])
        np.concatenate(tissues).tofile(tmp / ARRAYS["tissue"])
        np.concatenate(fingerprints).astype("<u8").tofile(tmp / ARRAYS["cell_hash"])
        vocab.save(tmp / VOCAB)
        manifest = {
            "format": FORMAT,
            "n_cells": len(offsets) - 1,
            "n_tokens": n_tokens,
            "n_truncated_cells": n_truncated,
            "vocab_size": len(vocab),
            "vocab_sha256": vocab.sha256(),
            "dtypes": {"offsets": "int64", "gene_ids": gene_dtype.name, "bins": "uint8", "tissue": "int8", "cell_hash": "uint64"},
            "tokens": cfg.to_dict(),
            "sources": list(sources.values()),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        write_record(tmp, KIND, "tokenize")
    log.info(
        "%s: %d cells, %d tokens (%.2f bytes per token)",
        out,
        len(offsets) - 1,
        n_tokens,
        sum((out / f).stat().st_size for f in ARRAYS.values()) / max(1, n_tokens),
    )
    return out


@dataclass
class TokenStore:
    """An opened store: its cells as memory-mapped arrays, the tissue codes, vocabulary and tokens config."""

    path: Path
    cells: TokenizedCells
    tissue: np.ndarray
    vocab: Vocabulary
    tokens: TokenConfig
    manifest: dict
    cell_hash: np.ndarray  # uint64 per cell (memory-mapped): `cell_fingerprints` of its counts

    @classmethod
    def open(cls, path, vocab: Vocabulary | None = None, tokens: TokenConfig | None = None) -> TokenStore:
        """Map a store; InputError if its manifest is malformed, its files are incomplete, or it was built
        with another vocabulary or tokens config. (`verify` then reads it whole.)"""
        path = Path(path)
        try:
            manifest = json.loads((path / MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{path}: not a readable token store ({type(exc).__name__})") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else None
            raise InputError(f"{path}: not a token store of this version (format {found!r}, expected {FORMAT}); tokenize again")
        stored_tokens = check_manifest(manifest, path / MANIFEST)
        stored_vocab = Vocabulary.load(path / VOCAB)
        if len(stored_vocab) != manifest["vocab_size"] or stored_vocab.sha256() != manifest["vocab_sha256"]:
            raise InputError(f"{path / VOCAB}: not the vocabulary the store was built with")
        if vocab is not None and vocab != stored_vocab:
            raise InputError(
                f"{path}: built with another gene vocabulary ({len(stored_vocab)} genes) than this run's ({len(vocab)} genes); tokenize again"
            )
        if tokens is not None and tokens != stored_tokens:
            changed = [f"{k} {v!r} -> {tokens.to_dict()[k]!r}" for k, v in stored_tokens.to_dict().items() if tokens.to_dict()[k] != v]
            raise InputError(f"{path}: built with other tokens options than this run's ({'; '.join(changed)}); tokenize again")
        lengths = {
            "offsets": manifest["n_cells"] + 1,
            "gene_ids": manifest["n_tokens"],
            "bins": manifest["n_tokens"],
            "tissue": manifest["n_cells"],
            "cell_hash": manifest["n_cells"],
        }
        arrays = {}
        for name, file in ARRAYS.items():
            dtype = np.dtype(manifest["dtypes"][name])
            size = (path / file).stat().st_size if (path / file).exists() else -1
            if size != lengths[name] * dtype.itemsize:
                raise InputError(
                    f"{path / file}: {size} bytes, the manifest says {lengths[name] * dtype.itemsize}; the store is incomplete or damaged"
                )
            arrays[name] = np.memmap(path / file, dtype=dtype, mode="r", shape=(lengths[name],)) if lengths[name] else np.zeros(0, dtype)
        dropped = max((s["n_dropped_genes"] for s in manifest["sources"]), default=0)
        cells = TokenizedCells(
            arrays["offsets"], arrays["gene_ids"], arrays["bins"], n_dropped_genes=dropped, n_truncated_cells=manifest["n_truncated_cells"]
        )
        tissue = np.asarray(arrays["tissue"], dtype=np.int64)
        return cls(path, cells, tissue, stored_vocab, stored_tokens, manifest, arrays["cell_hash"])

    def verify(self, hashes: bool = True) -> None:
        """Read the store whole, a chunk at a time: every file against its SHA-256 in the record (unless
        not `hashes`), offsets from 0 to n_tokens in order, gene ids within the vocabulary, bins within
        n_bins, tissue codes known. InputError naming the first file that fails."""
        if hashes:
            verify_record(self.path, KIND)
        offsets, tissue = self.cells.indptr, self.tissue
        where = self.path / ARRAYS["offsets"]
        if len(offsets) and (offsets[0] != 0 or offsets[-1] != self.manifest["n_tokens"]):
            raise InputError(
                f"{where}: runs from {offsets[0]} to {offsets[-1]}, not 0 to the manifest's {self.manifest['n_tokens']} tokens; tokenize again"
            )
        checks = (
            ("offsets", offsets, lambda a, prev: bool((np.diff(a, prepend=prev) >= 0).all()), "out of order"),
            (
                "gene_ids",
                self.cells.gene_ids,
                lambda a, _: a.size == 0 or int(a.max()) < len(self.vocab),
                f"holds gene ids beyond the {len(self.vocab)}-gene vocabulary",
            ),
            (
                "bins",
                self.cells.bins,
                lambda a, _: a.size == 0 or int(a.max()) < self.tokens.n_bins,
                f"holds bins beyond the {self.tokens.n_bins} expression bins",
            ),
            ("tissue", tissue, lambda a, _: bool(np.isin(a, (0, 1, IGNORE)).all()), "holds unknown tissue codes"),
        )
        for name, array, valid, problem in checks:
            for start in range(0, len(array), VERIFY_CHUNK):
                if not valid(np.asarray(array[start : start + VERIFY_CHUNK]), array[max(0, start - 1)]):
                    raise InputError(f"{self.path / ARRAYS[name]}: {problem} (from element {start}); the store is damaged, tokenize again")


def _count(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0


def check_manifest(manifest: dict, where: Path) -> TokenConfig:
    """InputError naming the first missing or ill-typed field of a store manifest; returns its tokens config."""
    fields = {
        "n_cells": _count,
        "n_tokens": _count,
        "n_truncated_cells": _count,
        "vocab_size": _count,
        "vocab_sha256": lambda v: isinstance(v, str),
        "dtypes": lambda v: isinstance(v, dict),
        "tokens": lambda v: isinstance(v, dict),
        "sources": lambda v: isinstance(v, list),
    }
    for key, valid in fields.items():
        if key not in manifest:
            raise InputError(f"{where}: no '{key}'; the store is damaged, tokenize again")
        if not valid(manifest[key]):
            raise InputError(f"{where}: '{key}' is {manifest[key]!r}, not of its type; the store is damaged, tokenize again")
    expected = {
        "offsets": "int64",
        "gene_ids": gene_id_dtype(manifest["vocab_size"]).name,
        "bins": "uint8",
        "tissue": "int8",
        "cell_hash": "uint64",
    }
    if manifest["dtypes"] != expected:
        raise InputError(f"{where}: 'dtypes' is {manifest['dtypes']!r}, expected {expected}; the store is damaged, tokenize again")
    if not all(
        isinstance(s, dict) and isinstance(s.get("path"), str) and _count(s.get("n_cells")) and _count(s.get("n_dropped_genes"))
        for s in manifest["sources"]
    ):
        raise InputError(f"{where}: 'sources' must list path, n_cells, n_dropped_genes of each file; the store is damaged, tokenize again")
    if sum(s["n_cells"] for s in manifest["sources"]) != manifest["n_cells"]:
        raise InputError(
            f"{where}: its sources add up to {sum(s['n_cells'] for s in manifest['sources'])} cells, not n_cells "
            f"{manifest['n_cells']}; the store is damaged, tokenize again"
        )
    try:
        return TokenConfig.from_dict(manifest["tokens"])
    except (InputError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: 'tokens' is not a tokens config ({exc}); the store is damaged, tokenize again") from None
