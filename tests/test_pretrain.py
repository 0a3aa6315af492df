import numpy as np
import pytest
import torch

from celllm.checkpoint import load_checkpoint
from celllm.cli import main
from celllm.errors import InputError
from celllm.pretrain.corpus import load_corpus
from celllm.pretrain.dnc import StepSetup, divide_and_conquer_step, full_batch_step
from celllm.pretrain.model import CellLMForPretraining
from celllm.pretrain.objectives import LossWeights, make_views
from celllm.pretrain.trainer import pretrain
from celllm.tokens import Vocabulary
from tests.fixtures.data import TINY_MODEL, make_counts
from tests.fixtures.training import killed_at_step


def _gradients(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("dropout", [0.0, 0.2])
@pytest.mark.parametrize("dtype,rtol", [(torch.float32, 1e-4), (torch.float64, 1e-9)])
def test_divide_and_conquer_gradients_equal_full_batch(corpus_path, tiny_config, dtype, rtol, dropout):
    """One big batch and sub-batches of 5, 5, 2 cells give the same parameter gradients, dropout on or off."""
    from dataclasses import replace

    tiny_config = replace(tiny_config, encoder=replace(tiny_config.encoder, dropout=dropout))
    corpus = load_corpus([corpus_path], tiny_config.tokens)
    torch.manual_seed(0)
    model = CellLMForPretraining(len(corpus.vocab), tiny_config).to(dtype).train()
    views = make_views(corpus.cells, np.arange(12), corpus.tissue, 0, 0, 0.8, 0.3, tiny_config.tokens)
    setup = StepSetup(len(corpus.vocab), tiny_config.tokens, LossWeights(tissue=0.5), temperature=0.1, sub_batch_size=5)

    full_losses = full_batch_step(model, views, setup)
    reference = _gradients(model)
    model.zero_grad()
    dnc_losses = divide_and_conquer_step(model, views, setup)  # uneven sub-batches 5, 5, 2
    gradients = _gradients(model)

    assert reference.keys() == gradients.keys() and len(reference) > 10
    for name in reference:
        torch.testing.assert_close(gradients[name], reference[name], rtol=rtol, atol=rtol * 1e-3, msg=lambda m: f"{name}: {m}")
    assert dnc_losses["loss"] == pytest.approx(full_losses["loss"], rel=rtol)
    if dropout:  # the dropout really acted: the model in eval mode has other gradients
        model.zero_grad()
        full_batch_step(model.eval(), views, setup)
        assert not torch.allclose(_gradients(model)["encoder.layers.0.ff.up.weight"], reference["encoder.layers.0.ff.up.weight"])


def test_same_weights_for_any_sub_batch_size(corpus_path, tmp_path):
    """The CLI contract: --sub-batch-size changes memory, not the result."""
    import json

    config = tmp_path / "config.json"
    config.write_text(json.dumps(TINY_MODEL))
    for sub in (8, 3):
        assert (
            main(
                [
                    "pretrain",
                    "--data",
                    str(corpus_path),
                    "--out",
                    str(tmp_path / f"sub{sub}"),
                    "--config",
                    str(config),
                    "--batch-size",
                    "8",
                    "--sub-batch-size",
                    str(sub),
                    "--max-steps",
                    "3",
                    "--seed",
                    "7",
                    "--quiet",
                ]
            )
            == 0
        )
    a, _, _ = load_checkpoint(tmp_path / "sub8")
    b, _, _ = load_checkpoint(tmp_path / "sub3")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")
    # and the run really trained: weights moved away from a fresh seed-7 model
    log = (tmp_path / "sub8" / "train_log.csv").read_text().splitlines()
    assert len(log) == 4 and log[0].startswith("step,loss,contrastive,mlm,tissue")


def test_checkpoint_is_reused_as_config_and_rejects_other_vocabulary(checkpoint, corpus_path, tmp_path):
    model, vocab, cfg = load_checkpoint(checkpoint)
    assert cfg.encoder.dim == 16 and len(vocab) == 30
    with pytest.raises(InputError, match="another gene vocabulary"):
        load_checkpoint(checkpoint, vocab=Vocabulary(["X", "Y"]))
    (tmp_path / "vocab.txt").write_text("G0\nG1\n")
    out = tmp_path / "other"
    code = main(
        [
            "pretrain",
            "--data",
            str(corpus_path),
            "--out",
            str(out),
            "--config",
            str(checkpoint / "config.json"),
            "--vocab",
            str(tmp_path / "vocab.txt"),
            "--max-steps",
            "1",
            "--quiet",
        ]
    )
    assert code == 0 and load_checkpoint(out)[1].genes == ["G0", "G1"]


def test_resume_after_a_kill_reaches_the_same_weights(corpus_path, tiny_config, tmp_path, monkeypatch):
    corpus = load_corpus([corpus_path], tiny_config.tokens)
    cfg = tiny_config.with_pretrain(max_steps=4, checkpoint_every=2)
    straight = pretrain(corpus, tmp_path / "straight", cfg, progress=False)

    with killed_at_step(monkeypatch, 3), pytest.raises(KeyboardInterrupt):
        pretrain(corpus, tmp_path / "resumed", cfg, progress=False)
    assert len((tmp_path / "resumed" / "train_log.csv").read_text().splitlines()) == 3  # header + 2 steps

    # and a kill between the two renames of the next save: the saved checkpoint waits in a hidden folder
    import shutil

    leftover = tmp_path / ".resumed.x1y2"
    leftover.mkdir()
    shutil.copytree(tmp_path / "resumed", leftover / "resumed.previous")
    (tmp_path / "resumed").rename(leftover / "resumed")
    resumed = pretrain(corpus, tmp_path / "resumed", cfg, resume=True, progress=False)
    assert not leftover.exists()
    a, b = load_checkpoint(straight)[0].state_dict(), load_checkpoint(resumed)[0].state_dict()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-7, msg=lambda m: f"{name}: {m}")
    assert len((resumed / "train_log.csv").read_text().splitlines()) == 5


def test_a_corpus_without_tissue_labels_trains_with_a_stated_warning(tmp_path, tiny_config, caplog):
    from celllm.io import write_h5ad

    write_h5ad(make_counts(n_cells=20, seed=4, tissue=False), tmp_path / "untagged.h5ad")
    with caplog.at_level("WARNING"):
        corpus = load_corpus([tmp_path / "untagged.h5ad"], tiny_config.tokens)
        pretrain(corpus, tmp_path / "m", tiny_config.with_pretrain(max_steps=1), progress=False)
    assert "untagged.h5ad: no 'tissue' column, so its 20 cells do not train the tumor/normal objective" in caplog.text
    assert "the tumor/normal objective (weight_tissue 1) is 0 throughout" in caplog.text
    assert (tmp_path / "m" / "train_log.csv").exists()


def test_bad_pretraining_input_fails_with_one_line(tmp_path, capsys):
    missing = tmp_path / "nope.h5ad"
    assert main(["pretrain", "--data", str(missing), "--out", str(tmp_path / "out"), "--max-steps", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.h5ad: file not found" in err
    assert not (tmp_path / "out").exists()


def test_batch_larger_than_corpus_is_refused(corpus_path, tiny_config, tmp_path):
    corpus = load_corpus([corpus_path], tiny_config.tokens)
    with pytest.raises(InputError, match="larger than the corpus"):
        pretrain(corpus, tmp_path / "x", tiny_config.with_pretrain(batch_size=1000), progress=False)


def test_gene_embedding_table_is_frozen_or_trainable_and_stays_frozen_on_resume(corpus_path, tiny_config, tmp_path):
    corpus = load_corpus([corpus_path], tiny_config.tokens)
    n = len(corpus.vocab)
    table = torch.randn(n, tiny_config.encoder.dim)
    frozen = pretrain(corpus, tmp_path / "frozen", tiny_config.with_pretrain(max_steps=2), progress=False, gene_embeddings=table)
    assert torch.equal(load_checkpoint(frozen)[0].encoder.gene_embedding.weight[:n], table)
    pretrain(corpus, frozen, tiny_config.with_pretrain(max_steps=4), resume=True, progress=False)
    assert torch.equal(load_checkpoint(frozen)[0].encoder.gene_embedding.weight[:n], table)

    trainable = pretrain(
        corpus,
        tmp_path / "trainable",
        tiny_config.with_pretrain(max_steps=2, gene_embeddings="trainable"),
        progress=False,
        gene_embeddings=table,
    )
    assert not torch.equal(load_checkpoint(trainable)[0].encoder.gene_embedding.weight[:n], table)


def test_cli_reads_a_graphmae_table_for_the_vocabulary(corpus_path, checkpoint, tmp_path):
    import numpy as np

    from celllm.ppi import write_gene_embeddings

    genes = [f"G{i}" for i in range(30)]
    write_gene_embeddings(tmp_path / "genes.npz", genes[:-1], np.ones((29, 16), dtype=np.float32))  # one gene short
    args = [
        "pretrain",
        "--data",
        str(corpus_path),
        "--out",
        str(tmp_path / "m"),
        "--config",
        str(checkpoint / "config.json"),
        "--gene-embeddings",
        str(tmp_path / "genes.npz"),
        "--max-steps",
        "1",
        "--quiet",
    ]
    assert main(args) == 2 and not (tmp_path / "m").exists()
    write_gene_embeddings(tmp_path / "genes.npz", genes, np.ones((30, 16), dtype=np.float32))
    assert main(args) == 0
    assert torch.equal(load_checkpoint(tmp_path / "m")[0].encoder.gene_embedding.weight[:30], torch.ones(30, 16))


def test_token_budget_caps_every_pass_and_keeps_gradients_exact(corpus_path, tiny_config):
    from celllm.pretrain.dnc import plan_sub_batches
    from celllm.pretrain.trainer import by_length

    corpus = load_corpus([corpus_path], tiny_config.tokens)
    indices = by_length(np.arange(16), corpus.cells.lengths())
    views = make_views(corpus.cells, indices, corpus.tissue, 1, 0, 0.8, 0.3, tiny_config.tokens)
    longest = views.cell_lengths().tolist()
    budget = 4 * max(longest)  # room for two cells of the longest kind
    plan = plan_sub_batches(views, 6, budget)
    assert plan[0][0] == 0 and plan[-1][1] == 16 and all(a[1] == b[0] for a, b in zip(plan, plan[1:]))
    for a, b in plan:
        assert b - a <= 6 and (2 * (b - a) * max(longest[a:b]) <= budget or b - a == 1)
    assert len(plan) > len(plan_sub_batches(views, 6))  # the budget really cut the long cells finer

    torch.manual_seed(0)
    model = CellLMForPretraining(len(corpus.vocab), tiny_config)
    setup = StepSetup(len(corpus.vocab), tiny_config.tokens, sub_batch_size=6, sub_batch_tokens=budget)
    full_batch_step(model, views, setup)
    reference = _gradients(model)
    model.zero_grad()
    divide_and_conquer_step(model, views, setup)
    for name, grad in _gradients(model).items():
        torch.testing.assert_close(grad, reference[name], rtol=1e-4, atol=1e-7, msg=lambda m: f"{name}: {m}")
