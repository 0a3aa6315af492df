"""Two CPU processes on gloo, each mapping the same token store and making only its own cells' views,
reach the same weights as one process with the same global batch."""

import os
import socket
import sys

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


# How the workflow's pretraining job starts several processes (celllm.pretrain.launch). The commands are
# checked here against torchrun's and srun's documented options (a reference written here); the SLURM
# rehearsal (tests/test_slurm.py) runs them on a real two-node cluster.


def test_one_node_runs_celllm_under_torchrun_of_this_python_with_a_private_rendezvous():
    from celllm.pretrain.launch import torchrun_command

    command = torchrun_command(["pretrain", "--out", "x"], 2)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]  # the venv's torch, not a torchrun on PATH
    assert "--nproc-per-node=2" in command and "--standalone" in command  # a free port: jobs side by side never meet
    assert command[-5:] == ["-m", "celllm", "pretrain", "--out", "x"]


def test_several_nodes_run_one_torchrun_per_node_meeting_on_the_allocations_first_node(monkeypatch):
    from celllm.pretrain import launch

    monkeypatch.setattr(launch, "node_address", lambda nodelist: {"gpu[03-04]": "10.0.0.3"}[nodelist])  # scontrol's answer
    monkeypatch.setattr(launch, "free_port", lambda: 29517)
    env = {"SLURM_JOB_NUM_NODES": "2", "SLURM_JOB_NODELIST": "gpu[03-04]", "SLURM_JOB_ID": "77"}
    command = launch.torchrun_command(["pretrain"], 8, 2, environ=env)
    srun = command[: command.index(sys.executable)]
    assert srun[0] == "srun" and {"--nodes=2", "--ntasks-per-node=1"} <= set(srun)
    assert {"--nproc-per-node=8", "--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=10.0.0.3:29517", "--rdzv-id=77"} <= set(command)
    assert "--standalone" not in command


@pytest.mark.parametrize("env", [{}, {"SLURM_JOB_NUM_NODES": "1", "SLURM_JOB_NODELIST": "n1"}])
def test_several_nodes_without_a_slurm_job_of_as_many_nodes_is_refused_in_one_line(env):
    from celllm.errors import InputError
    from celllm.pretrain.launch import torchrun_command

    with pytest.raises(
        InputError, match=r"^pretrain.nodes: 2 nodes need a SLURM job of 2 nodes .*found (no SLURM allocation|an allocation of 1 nodes)$"
    ):
        torchrun_command(["pretrain"], 1, 2, environ=env)


def test_a_failing_rank_fails_the_launch_naming_its_exit_status(tmp_path):
    from celllm.pretrain.launch import run_distributed

    with open(tmp_path / "log", "w") as log, pytest.raises(RuntimeError, match=r"on 2 processes failed \(exit status [1-9]"):
        run_distributed(["pretrain", "--data", str(tmp_path / "missing.tokens"), "--out", str(tmp_path / "out")], 2, output=log)
    assert "missing.tokens" in (tmp_path / "log").read_text()  # each rank's own error reached the job's log
    assert not (tmp_path / "out").exists()
