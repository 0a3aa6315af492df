"""Two CPU processes on gloo, each mapping the same token store and making only its own cells' views,
reach the same weights as one process with the same global batch."""

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from celllm.checkpoint import load_checkpoint
from celllm.config import CellLMConfig
from celllm.pretrain.corpus import load_corpus
from celllm.pretrain.distributed import DataParallelGroup
from celllm.pretrain.trainer import pretrain
from tests.fixtures.data import TINY_MODEL

MODEL = {
    **TINY_MODEL,
    "encoder": {**TINY_MODEL["encoder"], "dropout": 0.1},
    "pretrain": {**TINY_MODEL["pretrain"], "sub_batch_size": 3, "max_steps": 3},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_main(rank, world_size, port, corpus_path, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        cfg = CellLMConfig.from_dict(MODEL)
        pretrain(load_corpus([corpus_path], cfg.tokens), out, cfg, device="cpu", progress=False, group=DataParallelGroup())
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one_process(corpus_path, tmp_path):
    from celllm.pretrain.store import build_token_store
    from celllm.tokens import Vocabulary

    cfg = CellLMConfig.from_dict(MODEL)
    store = build_token_store(
        [corpus_path], tmp_path / "corpus.tokens", Vocabulary.from_datasets([corpus_path]), cfg.tokens, progress=False
    )
    single = pretrain(load_corpus([store], cfg.tokens), tmp_path / "single", cfg, device="cpu", progress=False)
    mp.spawn(_rank_main, args=(2, _free_port(), str(store), str(tmp_path / "two")), nprocs=2, join=True)

    a, b = load_checkpoint(single)[0].state_dict(), load_checkpoint(tmp_path / "two")[0].state_dict()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-6, msg=lambda m: f"{name}: {m}")
    fresh = CellLMConfig.from_dict(MODEL)
    torch.manual_seed(fresh.pretrain.seed)
    from celllm.pretrain.model import CellLMForPretraining

    untrained = CellLMForPretraining(len(load_checkpoint(single)[1]), fresh).state_dict()
    assert not torch.allclose(untrained["encoder.layers.0.ff.up.weight"], a["encoder.layers.0.ff.up.weight"])


def test_uneven_global_batch_is_refused(corpus_path, tmp_path):
    class FakeGroup(DataParallelGroup):
        def __init__(self):
            self.rank, self.world_size = 0, 3

    from celllm.errors import InputError

    cfg = CellLMConfig.from_dict(MODEL)
    with pytest.raises(InputError, match="does not split evenly over 3 processes"):
        pretrain(load_corpus([corpus_path], cfg.tokens), tmp_path / "x", cfg, device="cpu", progress=False, group=FakeGroup())
