"""A user who makes mistakes: every bad input to `celllm embed` / `celllm pretrain` stops with one line
(`celllm: error: ...`, exit status 2) naming the file or option, and nothing is written or destroyed.

Each case builds its inputs in a fresh folder (a copy of the tiny checkpoint where it needs one), runs
the command in-process, and compares every file of the folder before and after.
"""

import hashlib
import json
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from celllm.cli import main
from celllm.io import write_h5ad
from tests.fixtures.data import TINY_MODEL, make_counts


def snapshot(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


class Case:
    """The folder of one case: cells, a checkpoint copy, a corpus copy, helpers to spoil them."""

    def __init__(self, tmp, checkpoint, corpus):
        self.tmp = tmp
        self.cells = tmp / "cells.h5ad"
        write_h5ad(make_counts(n_cells=6, n_genes=30, seed=5), self.cells)
        self.ckpt = tmp / "ckpt"
        shutil.copytree(checkpoint, self.ckpt)
        self.corpus = tmp / "corpus.h5ad"
        shutil.copy(corpus, self.corpus)
        self.config = tmp / "config.json"
        self.config.write_text(json.dumps(TINY_MODEL))

    def h5ad(self, name, X, genes=None):
        genes = genes or [f"G{i}" for i in range(X.shape[1])]
        write_h5ad(ad.AnnData(sp.csr_matrix(np.asarray(X, dtype=np.float32)), var=pd.DataFrame(index=genes)), self.tmp / name)
        return str(self.tmp / name)

    def embed(self, *extra, input=None, out=None):
        return ["embed", str(input or self.cells), "--checkpoint", str(self.ckpt), "--out", str(out or self.tmp / "out.h5ad"), "--quiet", *extra]

    def pretrain(self, *extra, out=None):
        return ["pretrain", "--data", str(self.corpus), "--out", str(out or self.tmp / "model"), "--config", str(self.config),
                "--max-steps", "1", "--quiet", *extra]

    def edit_json(self, path, section, key, value):
        values = json.loads(path.read_text())
        values.setdefault(section, {})[key] = value
        path.write_text(json.dumps(values))


def _log_normalised(case):
    log = np.log1p(make_counts(n_cells=6, n_genes=30, seed=5).X.toarray() * 3.7)
    return case.embed(input=case.h5ad("lognorm.h5ad", log))


def _folder_with_notes(case, name):
    folder = case.tmp / name
    folder.mkdir()
    (folder / "notes.txt").write_text("my notes")
    return folder


def _resume_after(case, *changes):
    """A checkpoint saved at step 1 in `model`, then a resume with `changes`."""
    assert main(case.pretrain()) == 0
    return case.pretrain("--resume", *changes)


def _resume_with_a_wider_encoder(case):
    wider = case.tmp / "wider.json"
    wider.write_text(json.dumps({**TINY_MODEL, "encoder": {**TINY_MODEL["encoder"], "dim": 32}}))
    return _resume_after(case, "--config", str(wider))


def _spoil_trainer_state(case):
    assert main(case.pretrain()) == 0
    state = case.tmp / "model" / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:100])
    return case.pretrain("--resume", "--max-steps", "2")


def _npy_table(case):
    np.save(case.tmp / "genes.npy", np.ones((30, 16), dtype=np.float32))
    return case.pretrain("--gene-embeddings", str(case.tmp / "genes.npy"))


def _narrow_table(case):
    from celllm.ppi import write_gene_embeddings

    write_gene_embeddings(case.tmp / "genes.npz", [f"G{i}" for i in range(30)], np.ones((30, 8), dtype=np.float32))
    return case.pretrain("--gene-embeddings", str(case.tmp / "genes.npz"))


def _checkpoint_file(case, name, text):
    (case.ckpt / name).write_text(text)
    return case.embed()


def _shuffled_vocab(case):
    genes = (case.ckpt / "vocab.txt").read_text().split()
    return _checkpoint_file(case, "vocab.txt", "\n".join(genes[1:] + genes[:1]) + "\n")


# (group, id, command builder, what the one line must say)
CASES = [
    # data loss: outputs never destroy what they replace unless it is the same kind of thing
    ("data loss", "embed-out-is-a-folder", lambda c: c.embed(out=_folder_with_notes(c, "results")), "is a folder"),
    ("data loss", "embed-out-is-a-folder-named-h5ad", lambda c: c.embed(out=_folder_with_notes(c, "cells_celllm.h5ad")), "is a folder"),
    ("data loss", "embed-out-is-the-checkpoint", lambda c: c.embed(out=c.ckpt), "is a folder"),
    ("data loss", "embed-out-inside-the-checkpoint", lambda c: c.embed(out=c.ckpt / "cells.h5ad"), "would be written inside the input folder"),
    ("data loss", "embed-out-is-the-input", lambda c: c.embed(out=c.cells), "would replace the input"),
    ("data loss", "pretrain-out-is-a-project-folder", lambda c: c.pretrain(out=_folder_with_notes(c, "myproject")),
     "exists and is not a CellLM checkpoint folder"),
    ("data loss", "pretrain-out-holds-the-corpus", lambda c: c.pretrain(out=c.tmp), "holds the input"),
    ("data loss", "resume-with-another-encoder", _resume_with_a_wider_encoder, "cannot resume with other options (encoder.dim 16 -> 32"),
    # silent or wrong results
    ("silent", "log-normalised-input", _log_normalised, "values look log-transformed"),
    ("silent", "binary-input", lambda c: c.embed(input=c.h5ad("binary.h5ad", np.eye(6, 30))), "every non-zero value is 1"),
    ("silent", "cells-without-any-count", lambda c: c.embed(input=c.h5ad("zeros.h5ad", np.zeros((3, 30)))), "no cell expresses a gene"),
    ("silent", "embed-batch-size-negative", lambda c: c.embed("--batch-size", "-1"), "argument --batch-size: must be a positive integer"),
    ("silent", "embed-batch-size-zero", lambda c: c.embed("--batch-size", "0"), "must be a positive integer"),
    ("silent", "shuffled-vocabulary", _shuffled_vocab, "not the gene order the weights were trained with"),
    ("silent", "negative-target-sum", lambda c: (c.edit_json(c.ckpt / "config.json", "tokens", "target_sum", -1), c.embed())[1],
     "tokens option 'target_sum' must be > 0"),
    ("silent", "max-steps-negative", lambda c: c.pretrain("--max-steps", "-3"), "argument --max-steps: must be an integer >= 0"),
    ("silent", "batch-size-one", lambda c: c.pretrain("--batch-size", "1"), "argument --batch-size: must be an integer >= 2"),
    ("silent", "resume-with-another-batch-size", lambda c: _resume_after(c, "--batch-size", "4"), "pretrain.batch_size 8 -> 4"),
    ("silent", "resume-with-another-seed", lambda c: _resume_after(c, "--seed", "9"), "pretrain.seed 0 -> 9"),
    ("silent", "resume-before-the-saved-step", lambda c: _resume_after(c, "--max-steps", "0"), "saved at step 1, beyond max_steps 0"),
    ("silent", "mask-ratio-one", lambda c: (c.edit_json(c.config, "pretrain", "mask_ratio", 1.0), c.pretrain())[1],
     "pretrain option 'mask_ratio' must be < 1.0"),
    # tracebacks that are now one line
    ("traceback", "duplicated-vocabulary", lambda c: _checkpoint_file(c, "vocab.txt", "G0\nG1\nG0\n"), "gene 'G0' is listed twice"),
    ("traceback", "empty-vocabulary", lambda c: _checkpoint_file(c, "vocab.txt", "\n"), "the vocabulary is empty"),
    ("traceback", "dim-as-a-string", lambda c: (c.edit_json(c.ckpt / "config.json", "encoder", "dim", "64"), c.embed())[1],
     "encoder option 'dim' must be an integer, not '64'"),
    ("traceback", "unknown-config-section", lambda c: (c.edit_json(c.config, "trainer", "lr", 1), c.pretrain())[1], "unknown section(s) trainer"),
    ("traceback", "gene-table-of-another-width", _narrow_table, "rows of width 8, but the encoder's gene embeddings have dim 16"),
    ("traceback", "gene-table-as-npy", _npy_table, "a single array, not a gene embedding table"),
    ("traceback", "truncated-trainer-state", _spoil_trainer_state, "unreadable trainer state"),
    ("traceback", "device-foo", lambda c: c.embed("--device", "foo"), "argument --device: 'foo' is not a torch device"),
    ("traceback", "pretrain-device-foo", lambda c: c.pretrain("--device", "cuda:x"), "argument --device: 'cuda:x' is not a torch device"),
    ("traceback", "out-under-a-file", lambda c: c.pretrain(out=c.cells / "model"), "is not a folder"),
    ("traceback", "embed-out-under-a-file", lambda c: c.embed(out=_folder_with_notes(c, "notes") / "notes.txt" / "out.h5ad"), "is not a folder"),
    ("traceback", "embed-out-not-h5ad", lambda c: c.embed(out=c.tmp / "out.csv"), "must be a .h5ad file"),
    ("traceback", "weights-file-spoilt", lambda c: _checkpoint_file(c, "model.safetensors", "not tensors"), "unreadable weights"),
]
if not torch.cuda.is_available():
    CASES.append(("traceback", "cuda-without-a-gpu", lambda c: c.embed("--device", "cuda"), "no CUDA device is available here"))


@pytest.mark.parametrize("group,build,message", [(g, b, m) for g, _, b, m in CASES], ids=[i for _, i, _, _ in CASES])
def test_bad_input_is_one_line_and_touches_nothing(group, build, message, tmp_path, capsys, checkpoint, corpus_path):
    case = Case(tmp_path, checkpoint, corpus_path)
    argv = build(case)
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("celllm: error: ") and message in lines[0], lines
    assert snapshot(tmp_path) == before  # nothing written, nothing destroyed


def test_what_a_user_who_knows_better_can_still_do(tmp_path, capsys, checkpoint, corpus_path, caplog):
    """The checks refuse what looks wrong; the same commands work where the input is right or the user says so."""
    case = Case(tmp_path, checkpoint, corpus_path)
    assert main(_log_normalised(case) + ["--skip-scale-check"]) == 0  # the user vouches for the scale
    mixed = np.vstack([np.zeros((2, 30)), make_counts(n_cells=4, n_genes=30, seed=2).X.toarray()])
    with caplog.at_level("WARNING"):
        assert main(case.embed(input=case.h5ad("some_empty.h5ad", mixed), out=tmp_path / "some.h5ad")) == 0
    assert "2 of 6 cells express no vocabulary gene" in caplog.text
    first = tmp_path / "first.h5ad"
    assert main(case.embed(out=first)) == 0 and main(case.embed(out=first)) == 0  # an older output of its kind is replaced
    assert main(case.pretrain(out=tmp_path / "model")) == 0
    assert main(case.pretrain("--resume", "--max-steps", "2", out=tmp_path / "model")) == 0  # more steps: fine
    assert main(["pretrain", "--data", str(case.corpus), "--out", str(tmp_path / "model"), "--resume", "--max-steps", "3", "--quiet"]) == 0
    log = (tmp_path / "model" / "train_log.csv").read_text().splitlines()
    assert len(log) == 4  # steps 1, 2, 3: resumed with the checkpoint's own options when no --config is given
