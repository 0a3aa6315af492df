"""Start `celllm pretrain` on several processes from one command.

On one node, torchrun starts `processes_per_node` ranks with a standalone rendezvous
(a free local port, so pretrainings side by side do not meet). On several nodes it
must run inside a SLURM allocation of one task per node: `srun` starts one torchrun on
each node and they meet at a c10d rendezvous on the allocation's first node, the
pattern SLURM sites document for torchrun. The ranks share the token store (memory
mapped) and rank 0 writes the checkpoint (celllm.pretrain.distributed). SLURM's own tools (scontrol)
say where the allocation is.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

from celllm.errors import InputError


def processes(processes_per_node: int, nodes: int) -> int:
    return processes_per_node * nodes


def _scontrol(*args: str) -> dict[str, str]:
    """The fields of one `scontrol show ... -o` record."""
    shown = subprocess.run(["scontrol", "show", *args, "-o"], capture_output=True, text=True, check=True)
    return dict(re.findall(r"(\w+)=(\S*)", shown.stdout))


def slurm_allocation(environ=os.environ) -> tuple[int, str] | None:
    """(nodes, node list) of the SLURM job this process runs in, else None. The job's variables where they are
    set; the controller's record of the job where a launcher cleared them (Snakemake's SLURM executor keeps
    only SLURM_JOB_ID in a job's environment)."""
    job = environ.get("SLURM_JOB_ID")
    if not job:
        return None
    count, nodelist = environ.get("SLURM_JOB_NUM_NODES"), environ.get("SLURM_JOB_NODELIST")
    if not (count and nodelist):
        record = _scontrol("job", job)
        count, nodelist = record["NumNodes"].split("-")[0], record["NodeList"]
    return int(count), nodelist


def node_address(nodelist: str) -> str:
    """The address SLURM reaches the first node of `nodelist` at (its NodeAddr): where the ranks meet."""
    first = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True).stdout.split()[0]
    return _scontrol("node", first).get("NodeAddr") or first


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("", 0))
        return probe.getsockname()[1]


def torchrun_command(argv: list[str], processes_per_node: int, nodes: int = 1, environ=os.environ) -> list[str]:
    """The command that runs `celllm <argv>` on `processes_per_node` processes on each of `nodes` nodes."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes_per_node}", "--max-restarts=0"]
    if nodes == 1:
        return [*torchrun, "--standalone", "-m", "celllm", *argv]
    allocation = slurm_allocation(environ)
    if allocation is None or allocation[0] != nodes:
        where = f"an allocation of {allocation[0]} nodes" if allocation else "no SLURM allocation"
        raise InputError(
            f"pretrain.nodes: {nodes} nodes need a SLURM job of {nodes} nodes (snakemake --profile profiles/slurm), found {where}"
        )
    # the batch script runs on the allocation's first node: a port free here is free where the ranks meet
    rendezvous = [
        f"--nnodes={nodes}",
        "--rdzv-backend=c10d",
        f"--rdzv-endpoint={node_address(allocation[1])}:{free_port()}",
        f"--rdzv-id={environ.get('SLURM_JOB_ID')}",
    ]
    # one task per node; --overlap: a job step of the job may already hold the allocation's CPUs
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
