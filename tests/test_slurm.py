"""Snakemake's SLURM executor on a real private cluster (tests/fixtures/slurm.py): each Snakemake job is
a SLURM job, as SLURM itself records it, and the cluster leaves no process behind.

Skipped, with the reason, where SLURM cannot run (.ci/install-slurm installs it)."""

import subprocess
import sys
import textwrap
import time

import pytest

from tests.fixtures.slurm import SlurmCluster, local_slurm_cluster, parse_jobcomp_line, processes_of, slurm_unavailable

# The plugin's quickest reliable polling. squeue, since the cluster has no slurmdbd: with the plugin's
# default (sacct, whenever the sacct binary exists) every status query fails and Snakemake waits forever.
SLURM_OPTIONS = [
    "--executor",
    "slurm",
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "1",
    "--default-resources",
    "mem_mb=100",
    "runtime=5",
]

# a: threads -> --cpus-per-task. b: an ordinary rule's own srun (--overlap: the plugin's srun step already
# holds the job's CPUs). c: a rule marked mpi is not wrapped in srun, so its srun can use the whole
# allocation, but says how many tasks: the plugin's job step clears SLURM_NTASKS and the allocation's other
# SLURM_* variables before running the rule, and srun alone would start one
SNAKEFILE = """
localrules: all

rule all:
    input: "b.txt", "c.txt"

rule a:
    output: "a.txt"
    threads: 2
    shell: "echo $SLURM_JOB_ID $SLURM_CPUS_PER_TASK > {output}"

rule b:
    input: "a.txt"
    output: "b.txt"
    shell: "srun --overlap -n1 hostname > {output}"

rule c:
    output: "c.txt"
    resources: mpi="srun", tasks=2
    shell: "srun --ntasks={resources.tasks} hostname > {output}"
"""


def test_jobcomp_lines_parse_with_spaces_in_values():
    line = "JobId=7 UserId=root(0) Name=my job JobState=COMPLETED WorkDir=/tmp/a b ProcCnt=2 ExitCode=0:0"
    fields = parse_jobcomp_line(line)
    assert (fields["JobId"], fields["Name"], fields["WorkDir"], fields["ProcCnt"]) == ("7", "my job", "/tmp/a b", "2")
    with pytest.raises(ValueError, match="not a jobcomp/filetxt record"):
        parse_jobcomp_line("Submitted batch job 7")


def test_each_snakemake_job_is_a_slurm_job(slurm_cluster: SlurmCluster, tmp_path):
    (tmp_path / "Snakefile").write_text(textwrap.dedent(SNAKEFILE))
    started = time.monotonic()
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--jobs", "3", *SLURM_OPTIONS],
        cwd=tmp_path,
        env=slurm_cluster.environ(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    print(f"workflow of 3 SLURM jobs: {time.monotonic() - started:.1f} s")

    # the session's cluster may have run other workflows: the plugin runs each job in the workflow's folder
    jobs = [j for j in slurm_cluster.wait_for_jobs(3) if j.fields.get("WorkDir") == str(tmp_path)]
    assert sorted(j.rule for j in jobs) == ["a", "b", "c"], [j.comment for j in jobs]
    assert {j.state for j in jobs} == {"COMPLETED"}
    assert len({j.name for j in jobs}) == 1  # the plugin names every job of a run after the run
    by_rule = {j.rule: j for j in jobs}
    assert by_rule["a"].cpus == 2 and by_rule["c"].cpus == 2

    job_id, cpus_per_task = (tmp_path / "a.txt").read_text().split()
    assert (int(job_id), cpus_per_task) == (by_rule["a"].job_id, "2")
    assert (tmp_path / "b.txt").read_text().split() == [slurm_cluster.node]
    assert (tmp_path / "c.txt").read_text().split() == [slurm_cluster.node] * 2


def test_the_cluster_stops_everything_it_started_also_when_the_body_raised(tmp_path):
    if reason := slurm_unavailable():
        pytest.skip(reason)
    with pytest.raises(RuntimeError, match="the body failed"):
        with local_slurm_cluster(tmp_path / "slurm") as cluster:
            daemons = {name: p.pid for name, p in cluster.processes.items()}
            cluster.run("sbatch", "--output=/dev/null", "--wrap", "sleep 300")
            deadline = time.monotonic() + 20
            while "RUNNING" not in cluster.run("squeue", "-h", "-o", "%T") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(processes_of(cluster.folder)) > len(daemons)  # the job's slurmstepd and sleep too
            raise RuntimeError("the body failed")
    assert set(daemons) == {"munged", "slurmctld", "slurmd"}
    assert all(p.poll() is not None for p in cluster.processes.values())
    assert processes_of(cluster.folder) == []
