"""What the project may replace, and what it leaves behind (celllm.outputs), where the outcome is a correct
result with a stated warning rather than a refusal (the refusals are rows of tests/test_bad_inputs.py)."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np

from celllm.checkpoint import KIND, load_checkpoint
from celllm.cli import main
from celllm.io import write_h5ad
from celllm.outputs import OWNER, RECORD, atomic_path, read_record, remove_leftovers
from celllm.pretrain.store import TokenStore
from tests.fixtures.data import TINY_MODEL, make_counts


def _config(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(TINY_MODEL))
    return str(path)


def test_a_symlinked_out_is_written_where_it_points(tmp_path, corpus_path):
    """`--out` a symlink to a folder: the command writes the folder it points to, and the link stays."""
    for command, kind in (("pretrain", KIND), ("tokenize", "token store")):
        target, link = tmp_path / f"disk2_{command}", tmp_path / f"{command}_link"
        target.mkdir()
        link.symlink_to(target, target_is_directory=True)
        extra = ["--max-steps", "1"] if command == "pretrain" else []
        assert main([command, "--data", str(corpus_path), "--out", str(link), "--config", _config(tmp_path), "--quiet", *extra]) == 0
        assert link.is_symlink() and link.resolve() == target
        assert read_record(target)["kind"] == kind


def test_an_edited_config_is_used_knowingly_with_what_changed(tmp_path, checkpoint, caplog):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoint, ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    config["tokens"]["target_sum"] = 5000.0
    (ckpt / "config.json").write_text(json.dumps(config))
    with caplog.at_level("WARNING"):
        _, _, cfg = load_checkpoint(ckpt, accept_edited_config=True)
    assert cfg.tokens.target_sum == 5000.0
    assert "edited after the checkpoint was written, used as edited: tokens.target_sum 10000.0 -> 5000.0" in caplog.text


def test_an_import_replaces_an_import(tmp_path):
    from tests.test_bad_inputs import RELEASED_SIZES, write_released_checkpoint

    write_released_checkpoint(tmp_path / "c.pth", 30, seed=1, **RELEASED_SIZES)
    (tmp_path / "genes.txt").write_text("".join(f"G{i}\n" for i in range(30)))
    argv = ["import-released", str(tmp_path / "c.pth"), "--genes", str(tmp_path / "genes.txt"), "--out", str(tmp_path / "imported")]
    assert main(argv) == 0 and main(argv) == 0
    assert read_record(tmp_path / "imported")["made_by"] == "import-released"


def test_every_file_counts_the_genes_it_loses(tmp_path, caplog):
    """Two corpus files against a vocabulary that lacks some of each file's genes: each file's loss is said and kept."""
    a, b = make_counts(n_cells=20, n_genes=30, seed=1), make_counts(n_cells=12, n_genes=30, seed=2)
    b.var_names = [f"H{i}" if i % 3 == 0 else f"G{i}" for i in range(30)]  # 10 genes the vocabulary lacks
    write_h5ad(a, tmp_path / "a.h5ad")
    write_h5ad(b, tmp_path / "b.h5ad")
    (tmp_path / "vocab.txt").write_text("".join(f"G{i}\n" for i in range(25)))  # drops G25..G29
    store = tmp_path / "s.tokens"
    with caplog.at_level("WARNING"):
        assert (
            main(
                [
                    "tokenize",
                    "--data",
                    str(tmp_path / "a.h5ad"),
                    "--data",
                    str(tmp_path / "b.h5ad"),
                    "--vocab",
                    str(tmp_path / "vocab.txt"),
                    "--out",
                    str(store),
                    "--config",
                    _config(tmp_path),
                    "--quiet",
                ]
            )
            == 0
        )
    assert "a.h5ad: 5 of its 30 genes are not in the 25-gene vocabulary" in caplog.text
    lost_b = sum(g not in {f"G{i}" for i in range(25)} for g in b.var_names)  # H0, H3, ..., H27 and G25, G26, G28, G29
    assert lost_b == 14 and f"b.h5ad: {lost_b} of its 30 genes are not in the 25-gene vocabulary" in caplog.text
    sources = TokenStore.open(store).manifest["sources"]
    assert [(s["n_cells"], s["n_dropped_genes"]) for s in sources] == [(20, 5), (12, lost_b)]
    caplog.clear()
    with caplog.at_level("WARNING"):  # pretraining on the files directly says the same
        assert (
            main(
                [
                    "pretrain",
                    "--data",
                    str(tmp_path / "a.h5ad"),
                    "--vocab",
                    str(tmp_path / "vocab.txt"),
                    "--out",
                    str(tmp_path / "m"),
                    "--config",
                    _config(tmp_path),
                    "--max-steps",
                    "1",
                    "--quiet",
                ]
            )
            == 0
        )
    assert "a.h5ad: 5 of its 30 genes are not in the 25-gene vocabulary" in caplog.text


def test_a_save_keeps_what_a_user_put_in_the_folder_meanwhile(tmp_path, caplog):
    """A long pretraining saves every N steps; a note put in the checkpoint between two saves survives the second."""
    folder = tmp_path / "model"
    for round in range(2):
        with atomic_path(folder) as tmp:
            tmp.mkdir()
            (tmp / "weights.bin").write_bytes(bytes([round]))
            from celllm.outputs import write_record

            write_record(tmp, KIND, "pretrain")
        if round == 0:
            (folder / "notes").mkdir()
            (folder / "notes" / "run.txt").write_text("started on node 3")
    assert (folder / "notes" / "run.txt").read_text() == "started on node 3" and (folder / "weights.bin").read_bytes() == b"\x01"
    assert "kept notes/run.txt, which the save did not write" in caplog.text


def test_the_temporary_folders_of_a_killed_run_are_removed_by_the_next(tmp_path, corpus_path):
    """A tokenize killed mid-write leaves `.corpus.tokens.*/`; the next run removes it, and only what a dead writer left."""
    out = tmp_path / "corpus.tokens"
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = tmp_path / ".corpus.tokens.killed"
    (dead / "corpus.tokens").mkdir(parents=True)
    (dead / "corpus.tokens" / "bins.bin").write_bytes(b"\0" * 100)
    (dead / OWNER).write_text(f"{os.uname().nodename} {child.stdout.strip()}")  # a process that has ended
    alive = tmp_path / ".corpus.tokens.running"
    alive.mkdir()
    (alive / OWNER).write_text(f"{os.uname().nodename} {os.getpid()}")  # a writer still at work
    foreign = tmp_path / ".corpus.tokens.mine"
    foreign.mkdir()  # not marked as ours: a user's folder that happens to share the prefix
    elsewhere = tmp_path / ".corpus.tokens.node7"
    elsewhere.mkdir()
    (elsewhere / OWNER).write_text(f"node7-of-the-cluster {child.stdout.strip()}")
    assert main(["tokenize", "--data", str(corpus_path), "--out", str(out), "--config", _config(tmp_path), "--quiet"]) == 0
    assert not dead.exists() and alive.exists() and foreign.exists() and elsewhere.exists()
    assert sorted(p.name for p in tmp_path.glob(".corpus.tokens.*")) == sorted([alive.name, foreign.name, elsewhere.name])
    assert remove_leftovers(out) == []  # nothing more of ours to remove


def test_a_record_names_every_file_with_its_hash(tmp_path, checkpoint):
    record = read_record(checkpoint)
    assert record["kind"] == KIND and record["made_by"] == "pretrain"
    listed = sorted(record["files"])
    assert listed == sorted(p.name for p in checkpoint.iterdir() if p.name != RECORD)
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in record["files"].values())
    assert np.isclose(record["config"]["tokens"]["target_sum"], 1e4)
