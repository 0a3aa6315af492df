"""A user who makes mistakes: every bad input to `celllm embed`, `pretrain`, `tokenize` and
`import-released` stops with one line (`celllm: error: ...`, exit status 2) naming the file or option,
and nothing is written or destroyed.

Each case builds its inputs in a fresh folder (a copy of the tiny checkpoint where it needs one), runs
the command in-process from inside that folder, and compares every file of the folder before and after.
The reference for "destroyed" is the user's own folder as it was, hashed file by file (not the project's
record, which is what is under test). Cases are grouped as issue 21 found them: data loss, silent or
wrong results, tracebacks.
"""

import hashlib
import json
import os
import shutil
import subprocess

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from celllm.cli import main
from celllm.io import write_h5ad
from celllm.outputs import RECORD
from tests.fixtures.data import TINY_MODEL, make_counts
from tests.fixtures.released import write_released_checkpoint

RELEASED_SIZES = {"dim": 16, "depth": 2, "heads": 2, "dim_head": 8, "nb_features": 8, "ff_mult": 2}


def snapshot(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir" for p in sorted(folder.rglob("*"))
    }


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
        return [
            "embed",
            str(input or self.cells),
            "--checkpoint",
            str(self.ckpt),
            "--out",
            str(out or self.tmp / "out.h5ad"),
            "--quiet",
            *extra,
        ]

    def pretrain(self, *extra, out=None, data=None):
        return [
            "pretrain",
            "--data",
            str(data or self.corpus),
            "--out",
            str(out or self.tmp / "model"),
            "--config",
            str(self.config),
            "--max-steps",
            "1",
            "--quiet",
            *extra,
        ]

    def tokenize(self, *extra, out=None):
        return [
            "tokenize",
            "--data",
            str(self.corpus),
            "--out",
            str(out or self.tmp / "corpus.tokens"),
            "--config",
            str(self.config),
            "--quiet",
            *extra,
        ]

    def store(self):
        """A token store of the corpus, made by `celllm tokenize`."""
        assert main(self.tokenize()) == 0
        return self.tmp / "corpus.tokens"

    def import_released(self, out=None):
        pth, genes = self.tmp / "checkpoint4_fixed.pth", self.tmp / "genes.txt"
        if not pth.exists():
            write_released_checkpoint(pth, 30, seed=1, **RELEASED_SIZES)
            genes.write_text("".join(f"G{i}\n" for i in range(30)))
        return ["import-released", str(pth), "--genes", str(genes), "--out", str(out or self.tmp / "released"), "--max-len", "40"]

    def legacy(self, folder=None):
        """Make a folder look written before records were kept (its record removed)."""
        (folder or self.ckpt).joinpath(RECORD).unlink()

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


def _spoil_trainer_state(case, rerecord=False):
    assert main(case.pretrain()) == 0
    state = case.tmp / "model" / "trainer_state.pt"
    state.write_bytes(state.read_bytes()[:100])
    if rerecord:
        _rerecord(case.tmp / "model")
    return case.pretrain("--resume", "--max-steps", "2")


def _rerecord(folder):
    """Record a folder's files as they now are: a record rewritten by hand, so that the deeper checks must catch what it hides."""
    from celllm.checkpoint import KIND
    from celllm.outputs import read_record, write_record

    old = read_record(folder)
    write_record(folder, KIND, old["made_by"], config=old["config"])


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


# --- issue 21: outputs that replace only their own kind, checkpoints and stores verified on use ---


def _hf_folder(case):
    """A folder another library wrote, with the three files a CellLM checkpoint also has."""
    bert = case.tmp / "bert"
    shutil.copytree(case.ckpt, bert)
    (bert / RECORD).unlink()
    (bert / "tokenizer.json").write_text("{}")
    (bert / "README.md").write_text("my model card")
    return bert


def _web_app(case):
    app = case.tmp / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "my app"}')
    (app / "src" / "app.js").write_text("console.log(1)")
    return app


def _store_with_notes(case):
    store = case.store()
    (store / "analysis").mkdir()
    (store / "analysis" / "notes.txt").write_text("what I found")
    return case.tokenize()


def _resume_with_notes(case):
    assert main(case.pretrain()) == 0
    (case.tmp / "model" / "notes.txt").write_text("lr 1e-3 looked best")
    return case.pretrain("--resume", "--max-steps", "2")


def _import_over_trained(case):
    assert main(case.pretrain()) == 0
    return case.import_released(out=case.tmp / "model")


def _in_a_folder_of_mine(case, name, out="."):
    """Move into a folder of the user's own (holding a file of theirs, no input) and name `out` relative to it."""
    folder = case.tmp / name
    folder.mkdir(parents=True)
    (folder / "plot.R").write_text("plot(x)")
    os.chdir(folder)  # the test's monkeypatch.chdir restores the first folder
    return out


def _edited_checkpoint_config(case, section, key, value):
    case.edit_json(case.ckpt / "config.json", section, key, value)
    return case.embed()


def _file_of_another_run(case, name):
    """Two pretrainings of different seeds; the second's `name` copied into the first, which is then resumed."""
    assert main(case.pretrain()) == 0 and main(case.pretrain("--seed", "7", out=case.tmp / "other")) == 0
    shutil.copy(case.tmp / "other" / name, case.tmp / "model" / name)
    return case.pretrain("--resume", "--max-steps", "2")


def _trainer_state_of_another_size(case):
    """A record rewritten over the swap: the optimizer state's shapes must catch it."""
    wider = case.tmp / "wider.json"
    wider.write_text(json.dumps({**TINY_MODEL, "encoder": {**TINY_MODEL["encoder"], "ff_mult": 4}}))
    assert main(case.pretrain()) == 0
    assert (
        main(
            ["pretrain", "--data", str(case.corpus), "--out", str(case.tmp / "wide"), "--config", str(wider), "--max-steps", "1", "--quiet"]
        )
        == 0
    )
    shutil.copy(case.tmp / "wide" / "trainer_state.pt", case.tmp / "model" / "trainer_state.pt")
    _rerecord(case.tmp / "model")
    return case.pretrain("--resume", "--max-steps", "2")


def _spoilt_store(case, name, spoil, *extra):
    store = case.store()
    array = np.fromfile(store / name, dtype=np.uint8)
    spoil(array)
    array.tofile(store / name)
    return case.pretrain(*extra, data=store)


def _half_overwritten(array):
    array[: len(array) // 2] = 0


def _out_of_order(array):
    offsets = array.view(np.int64)
    offsets[1], offsets[2] = offsets[2], offsets[1]


def _gene_beyond_vocabulary(array):
    array[0] = 250  # the tiny store's ids are uint8 (30 genes)


def _manifest(case, edit):
    store = case.store()
    manifest = json.loads((store / "manifest.json").read_text())
    edit(manifest)
    (store / "manifest.json").write_text(json.dumps(manifest))
    return case.pretrain(data=store)


def _read_only_checkpoint(case):
    assert main(case.pretrain()) == 0
    _make_read_only(case.tmp / "model")
    return case.pretrain("--resume", "--max-steps", "2")


def _make_read_only(folder):
    """chmod for a user; for root (whom modes do not stop), the immutable attribute, where the file system has it."""
    if os.geteuid():
        folder.chmod(0o555)
    elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("running as root where chattr +i is not available: no way to make a folder read-only here")


MANIFEST_FIELDS = ["n_cells", "n_tokens", "n_truncated_cells", "vocab_size", "vocab_sha256", "dtypes", "tokens", "sources"]

ISSUE_21_CASES = [
    (
        "data loss",
        "pretrain-out-is-a-huggingface-folder",
        lambda c: c.pretrain(out=_hf_folder(c)),
        "holds files no celllm command wrote (README.md, config.json, model.safetensors, tokenizer.json, train_log.csv and 2 more)",
    ),
    (
        "data loss",
        "import-out-is-a-huggingface-folder",
        lambda c: c.import_released(out=_hf_folder(c)),
        "holds files no celllm command wrote",
    ),
    (
        "data loss",
        "tokenize-out-is-a-web-app",
        lambda c: c.tokenize(out=_web_app(c)),
        "holds files no celllm command wrote (manifest.json, src/app.js)",
    ),
    (
        "data loss",
        "tokenize-over-a-store-with-notes",
        _store_with_notes,
        "also holds files the token store did not write (analysis/notes.txt)",
    ),
    (
        "data loss",
        "resume-with-notes-in-the-checkpoint",
        _resume_with_notes,
        "also holds files the CellLM checkpoint did not write (notes.txt)",
    ),
    ("data loss", "import-over-a-trained-checkpoint", _import_over_trained, "holds a checkpoint made by `celllm pretrain`"),
    ("data loss", "tokenize-out-is-a-checkpoint", lambda c: c.tokenize(out=c.ckpt), "holds a CellLM checkpoint, not a token store"),
    ("data loss", "pretrain-out-is-a-token-store", lambda c: c.pretrain(out=c.store()), "holds a token store, not a CellLM checkpoint"),
    (
        "data loss",
        "embed-out-is-a-users-h5ad",
        lambda c: c.embed(out=c.h5ad("mine.h5ad", np.ones((2, 30)))),
        "exists and was not written by this command",
    ),
    (
        "data loss",
        "pretrain-out-is-the-current-folder",
        lambda c: c.pretrain(out=_in_a_folder_of_mine(c, "analysis")),
        "is the current folder or holds it",
    ),
    (
        "data loss",
        "tokenize-out-is-the-parent-folder",
        lambda c: c.tokenize(out=_in_a_folder_of_mine(c, "analysis/day1", "..")),
        "is the current folder or holds it",
    ),
    (
        "data loss",
        "import-out-is-the-current-folder",
        lambda c: c.import_released(out=_in_a_folder_of_mine(c, "analysis")),
        "is the current folder or holds it",
    ),
    (
        "silent",
        "checkpoint-binning-edited",
        lambda c: _edited_checkpoint_config(c, "tokens", "binning", "quantile"),
        "config.json: edited after the checkpoint was written (tokens.binning 'floor_clip' -> 'quantile')",
    ),
    (
        "silent",
        "checkpoint-attention-edited",
        lambda c: _edited_checkpoint_config(c, "encoder", "attention", "released"),
        "config.json: edited after the checkpoint was written (encoder.attention 'masked' -> 'released')",
    ),
    (
        "silent",
        "weights-of-another-run",
        lambda c: _file_of_another_run(c, "model.safetensors"),
        "model.safetensors: not the file this CellLM checkpoint was written with",
    ),
    (
        "silent",
        "trainer-state-of-another-run",
        lambda c: _file_of_another_run(c, "trainer_state.pt"),
        "trainer_state.pt: not the file this CellLM checkpoint was written with",
    ),
    ("silent", "train-log-of-another-run", lambda c: _file_of_another_run(c, "train_log.csv"), "train_log.csv: not the file"),
    (
        "silent",
        "store-bins-half-overwritten",
        lambda c: _spoilt_store(c, "bins.bin", _half_overwritten),
        "bins.bin: not the file this token store was written with",
    ),
    ("silent", "store-offsets-out-of-order", lambda c: _spoilt_store(c, "offsets.bin", _out_of_order), "offsets.bin: not the file"),
    (
        "silent",
        "store-offsets-out-of-order-unhashed",
        lambda c: _spoilt_store(c, "offsets.bin", _out_of_order, "--skip-store-hashes"),
        "offsets.bin: out of order",
    ),
    ("silent", "corpus-given-twice", lambda c: c.pretrain("--data", str(c.corpus)), "given twice as data"),
    ("silent", "tokenize-corpus-given-twice", lambda c: c.tokenize("--data", str(c.corpus)), "given twice as data"),
    (
        "traceback",
        "store-gene-id-beyond-the-vocabulary",
        lambda c: _spoilt_store(c, "gene_ids.bin", _gene_beyond_vocabulary, "--skip-store-hashes"),
        "gene_ids.bin: holds gene ids beyond the 30-gene vocabulary",
    ),
    *[
        ("traceback", f"manifest-without-{key}", lambda c, k=key: _manifest(c, lambda m: m.pop(k)), f"manifest.json: no '{key}'")
        for key in MANIFEST_FIELDS
    ],
    *[
        (
            "traceback",
            f"manifest-{key}-of-another-type",
            lambda c, k=key: _manifest(c, lambda m: m.update({k: "x" if k != "vocab_sha256" else 3})),
            f"manifest.json: '{key}' is",
        )
        for key in MANIFEST_FIELDS
    ],
    (
        "traceback",
        "manifest-bool-cell-count",
        lambda c: _manifest(c, lambda m: m.update(n_cells=True)),
        "'n_cells' is True, not of its type",
    ),
    (
        "traceback",
        "manifest-wider-dtype",
        lambda c: _manifest(c, lambda m: m["dtypes"].update(gene_ids="uint32")),
        "manifest.json: 'dtypes' is",
    ),
    (
        "traceback",
        "manifest-sources-disagree",
        lambda c: _manifest(c, lambda m: m["sources"][0].update(n_cells=1)),
        "its sources add up to 1 cells",
    ),
    (
        "traceback",
        "manifest-bad-tokens",
        lambda c: _manifest(c, lambda m: m["tokens"].update(n_bins="six")),
        "manifest.json: 'tokens' is not a tokens config",
    ),
    ("traceback", "manifest-not-json", lambda c: _manifest(c, lambda m: m.clear()), "not a token store of this version"),
    (
        "traceback",
        "trainer-state-of-another-size",
        _trainer_state_of_another_size,
        "the optimizer state is for parameters of another shape",
    ),
    ("traceback", "record-unreadable", lambda c: _checkpoint_file(c, RECORD, "{not json"), "celllm-record.json: unreadable"),
    (
        "traceback",
        "record-of-another-kind",
        lambda c: _checkpoint_file(c, RECORD, (c.ckpt / RECORD).read_text().replace("CellLM checkpoint", "token store")),
        "is a token store, not a CellLM checkpoint",
    ),
    (
        "traceback",
        "record-of-another-version",
        lambda c: _checkpoint_file(c, RECORD, '{"format": "celllm-record/0"}'),
        "not a record of this version",
    ),
    ("traceback", "resume-into-a-read-only-checkpoint", _read_only_checkpoint, "is read-only; the CellLM checkpoint cannot be updated"),
]


# (group, id, command builder, what the one line must say)
CASES = [
    # data loss: outputs never destroy what they replace unless it is the same kind of thing
    ("data loss", "embed-out-is-a-folder", lambda c: c.embed(out=_folder_with_notes(c, "results")), "is a folder"),
    ("data loss", "embed-out-is-a-folder-named-h5ad", lambda c: c.embed(out=_folder_with_notes(c, "cells_celllm.h5ad")), "is a folder"),
    ("data loss", "embed-out-is-the-checkpoint", lambda c: c.embed(out=c.ckpt), "is a folder"),
    (
        "data loss",
        "embed-out-inside-the-checkpoint",
        lambda c: c.embed(out=c.ckpt / "cells.h5ad"),
        "would be written inside the input folder",
    ),
    ("data loss", "embed-out-is-the-input", lambda c: c.embed(out=c.cells), "would replace the input"),
    (
        "data loss",
        "pretrain-out-is-a-project-folder",
        lambda c: c.pretrain(out=_folder_with_notes(c, "myproject")),
        "holds files no celllm command wrote (notes.txt)",
    ),
    ("data loss", "pretrain-out-holds-the-corpus", lambda c: c.pretrain(out=c.tmp), "holds the input"),
    ("data loss", "resume-with-another-encoder", _resume_with_a_wider_encoder, "cannot resume with other options (encoder.dim 16 -> 32"),
    # silent or wrong results
    ("silent", "log-normalised-input", _log_normalised, "values look log-transformed"),
    ("silent", "binary-input", lambda c: c.embed(input=c.h5ad("binary.h5ad", np.eye(6, 30))), "every non-zero value is 1"),
    ("silent", "cells-without-any-count", lambda c: c.embed(input=c.h5ad("zeros.h5ad", np.zeros((3, 30)))), "no cell expresses a gene"),
    ("silent", "embed-batch-size-negative", lambda c: c.embed("--batch-size", "-1"), "argument --batch-size: must be a positive integer"),
    ("silent", "embed-batch-size-zero", lambda c: c.embed("--batch-size", "0"), "must be a positive integer"),
    ("silent", "shuffled-vocabulary", _shuffled_vocab, "vocab.txt: not the file this CellLM checkpoint was written with"),
    (
        "silent",
        "shuffled-vocabulary-no-record",
        lambda c: (c.legacy(), _shuffled_vocab(c))[1],
        "not the gene order the weights were trained with",
    ),
    (
        "silent",
        "negative-target-sum",
        lambda c: (c.edit_json(c.ckpt / "config.json", "tokens", "target_sum", -1), c.embed())[1],
        "config.json: edited after the checkpoint was written (tokens.target_sum 10000.0 -> -1)",
    ),
    (
        "silent",
        "negative-target-sum-accepted",
        lambda c: (c.edit_json(c.ckpt / "config.json", "tokens", "target_sum", -1), c.embed("--accept-edited-config"))[1],
        "tokens option 'target_sum' must be > 0",
    ),
    ("silent", "max-steps-negative", lambda c: c.pretrain("--max-steps", "-3"), "argument --max-steps: must be an integer >= 0"),
    ("silent", "batch-size-one", lambda c: c.pretrain("--batch-size", "1"), "argument --batch-size: must be an integer >= 2"),
    ("silent", "resume-with-another-batch-size", lambda c: _resume_after(c, "--batch-size", "4"), "pretrain.batch_size 8 -> 4"),
    ("silent", "resume-with-another-seed", lambda c: _resume_after(c, "--seed", "9"), "pretrain.seed 0 -> 9"),
    ("silent", "resume-before-the-saved-step", lambda c: _resume_after(c, "--max-steps", "0"), "saved at step 1, beyond max_steps 0"),
    (
        "silent",
        "mask-ratio-one",
        lambda c: (c.edit_json(c.config, "pretrain", "mask_ratio", 1.0), c.pretrain())[1],
        "pretrain option 'mask_ratio' must be < 1.0",
    ),
    # tracebacks that are now one line
    (
        "traceback",
        "duplicated-vocabulary",
        lambda c: (c.legacy(), _checkpoint_file(c, "vocab.txt", "G0\nG1\nG0\n"))[1],
        "gene 'G0' is listed twice",
    ),
    ("traceback", "empty-vocabulary", lambda c: (c.legacy(), _checkpoint_file(c, "vocab.txt", "\n"))[1], "the vocabulary is empty"),
    (
        "traceback",
        "dim-as-a-string",
        lambda c: (c.edit_json(c.ckpt / "config.json", "encoder", "dim", "64"), c.embed("--accept-edited-config"))[1],
        "encoder option 'dim' must be an integer, not '64'",
    ),
    (
        "traceback",
        "unknown-config-section",
        lambda c: (c.edit_json(c.config, "trainer", "lr", 1), c.pretrain())[1],
        "unknown section(s) trainer",
    ),
    ("traceback", "gene-table-of-another-width", _narrow_table, "rows of width 8, but the encoder's gene embeddings have dim 16"),
    ("traceback", "gene-table-as-npy", _npy_table, "a single array, not a gene embedding table"),
    (
        "traceback",
        "truncated-trainer-state",
        _spoil_trainer_state,
        "trainer_state.pt: not the file this CellLM checkpoint was written with",
    ),
    (
        "traceback",
        "truncated-trainer-state-of-a-rewritten-record",
        lambda c: _spoil_trainer_state(c, rerecord=True),
        "unreadable trainer state",
    ),
    ("traceback", "device-foo", lambda c: c.embed("--device", "foo"), "argument --device: 'foo' is not a torch device"),
    ("traceback", "pretrain-device-foo", lambda c: c.pretrain("--device", "cuda:x"), "argument --device: 'cuda:x' is not a torch device"),
    ("traceback", "out-under-a-file", lambda c: c.pretrain(out=c.cells / "model"), "is not a folder"),
    (
        "traceback",
        "embed-out-under-a-file",
        lambda c: c.embed(out=_folder_with_notes(c, "notes") / "notes.txt" / "out.h5ad"),
        "is not a folder",
    ),
    ("traceback", "embed-out-not-h5ad", lambda c: c.embed(out=c.tmp / "out.csv"), "must be a .h5ad file"),
    (
        "traceback",
        "weights-file-spoilt",
        lambda c: _checkpoint_file(c, "model.safetensors", "not tensors"),
        "model.safetensors: not the file this CellLM checkpoint was written with",
    ),
    (
        "traceback",
        "weights-file-spoilt-no-record",
        lambda c: (c.legacy(), _checkpoint_file(c, "model.safetensors", "not tensors"))[1],
        "unreadable weights",
    ),
    *ISSUE_21_CASES,
]
if not torch.cuda.is_available():
    CASES.append(("traceback", "cuda-without-a-gpu", lambda c: c.embed("--device", "cuda"), "no CUDA device is available here"))


@pytest.mark.parametrize("group,build,message", [(g, b, m) for g, _, b, m in CASES], ids=[i for _, i, _, _ in CASES])
def test_bad_input_is_one_line_and_touches_nothing(group, build, message, tmp_path, capsys, checkpoint, corpus_path, monkeypatch):
    work = tmp_path / "work"  # the user's folder; the command runs inside it
    work.mkdir()
    monkeypatch.chdir(work)
    case = Case(work, checkpoint, corpus_path)
    try:
        argv = build(case)
        before = snapshot(tmp_path)
        capsys.readouterr()
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("celllm: error: ") and message in lines[0], lines
        assert snapshot(tmp_path) == before  # nothing written, nothing destroyed
    finally:
        subprocess.run(["chattr", "-R", "-i", str(work)], capture_output=True)  # a read-only case's folder, for pytest to remove


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
