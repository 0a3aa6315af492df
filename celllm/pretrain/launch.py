"""Start `celllm pretrain` on several processes from one command.

On one node, torchrun starts `processes_per_node` ranks with a standalone rendezvous
(a free local port, so pretrainings side by side do not meet). On several nodes it
must run inside a SLURM allocation of one task per node: `srun` starts one torchrun on
each node and they meet at a c10d rendezvous on the allocation's first node, the
pattern SLURM sites document for torchrun. The ranks share the token store (memory
mapped) and rank 0 writes the checkpoint (celllm.pretrain.distributed).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from celllm.errors import InputError

RENDEZVOUS_PORT = 29500  # on the first node of a multi-node allocation, where the ranks meet


def processes(processes_per_node: int, nodes: int) -> int:
    return processes_per_node * nodes


def first_node(nodelist: str) -> str:
    """The first host of a SLURM node list (`SLURM_JOB_NODELIST`, e.g. gpu[03-04,07]), as SLURM expands it."""
    listed = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True)
    return listed.stdout.split()[0]


def torchrun_command(argv: list[str], processes_per_node: int, nodes: int = 1, environ=os.environ) -> list[str]:
    """The command that runs `celllm <argv>` on `processes_per_node` processes on each of `nodes` nodes."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes_per_node}", "--max-restarts=0"]
    if nodes == 1:
        return [*torchrun, "--standalone", "-m", "celllm", *argv]
    allocated = int(environ.get("SLURM_JOB_NUM_NODES", "0") or 0)
    if allocated != nodes:
        where = f"an allocation of {allocated} nodes" if allocated else "no SLURM allocation"
        raise InputError(
            f"pretrain.nodes: {nodes} nodes need a SLURM job of {nodes} nodes (snakemake --profile profiles/slurm), found {where}"
        )
    head = first_node(environ["SLURM_JOB_NODELIST"])
    rendezvous = [
        f"--nnodes={nodes}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={head}:{RENDEZVOUS_PORT}",
        f"--rdzv-id={environ.get('SLURM_JOB_ID', 'celllm')}",
    ]
    # one task per node; --overlap: the job's own step may already hold the allocation's CPUs
    srun = ["srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--overlap"]
    return [*srun, *torchrun, *rendezvous, "-m", "celllm", *argv]


def run_distributed(argv: list[str], processes_per_node: int, nodes: int = 1, threads_per_process: int = 1, output=None) -> None:
    """Run `celllm <argv>` on several processes and wait, their output going to the open file `output`
    (else to this process's); a rank's failure raises, naming the exit status.

    A SIGTERM or SIGINT to this process (a scheduler's cancel, Ctrl-C) is passed on, so no rank outlives
    the job; the ranks themselves die with their torchrun (celllm.pretrain.distributed).
    """
    command = torchrun_command(argv, processes_per_node, nodes)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads_per_process)}
    if output is not None:
        output.flush()
    child = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT if output is not None else None)

    def forward(signum, _frame):
        child.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        status = child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if status != 0:
        raise RuntimeError(
            f"celllm {argv[0]} on {processes(processes_per_node, nodes)} processes failed (exit status {status}): {' '.join(command)}"
        )
