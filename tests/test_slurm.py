"""Snakemake's SLURM executor on a real private cluster (tests/fixtures/slurm.py): each Snakemake job is
a SLURM job, as SLURM itself records it, and the cluster leaves no process behind; and the rehearsal of the
paper config through the project's profile on a two-node cluster, whose tables equal the local rehearsal's.

Skipped, with the reason, where SLURM cannot run (.ci/install-slurm installs it)."""

import re
import subprocess
import sys
import textwrap
import time

import pytest

from tests.fixtures.rehearsal import rehearse
from tests.fixtures.slurm import SlurmCluster, local_slurm_cluster, parse_jobcomp_line, processes_of, slurm_unavailable

# The plugin's quickest reliable polling. squeue, since the cluster has no slurmdbd: with the plugin's
# default (sacct, whenever the sacct binary exists) every status query fails and Snakemake waits forever.
QUICK_SQUEUE_STATUS = [
    "--slurm-status-command",
    "squeue",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "1",
]
SLURM_OPTIONS = [
    "--executor",
    "slurm",
    *QUICK_SQUEUE_STATUS,
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


@pytest.fixture(scope="module")
def one_node(tmp_path_factory):
    """A private cluster of one node, this host as it is (a second second to start)."""
    if reason := slurm_unavailable():
        pytest.skip(reason)
    with local_slurm_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


def test_each_snakemake_job_is_a_slurm_job(one_node: SlurmCluster, tmp_path):
    slurm_cluster = one_node
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
    assert (tmp_path / "b.txt").read_text().split() == [slurm_cluster.nodes[0]]
    assert (tmp_path / "c.txt").read_text().split() == [slurm_cluster.nodes[0]] * 2


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


# The rehearsal of the paper config (tests/fixtures/rehearsal.py) through the project's own profile, on the
# session's two-node cluster (tests/conftest.py): the pretraining spans both nodes, one process each, through
# the workflow's srun and torchrun. Only what this cluster lacks is added to the profile: squeue for job
# status (no accounting database), and quick polling.
SLURM_RUN = ["--profile", "profiles/slurm", *QUICK_SQUEUE_STATUS]
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+)")


@pytest.fixture(scope="module")
def slurm_rehearsal(slurm_cluster, tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm_rehearsal")
    two_nodes = base / "two_nodes.yaml"
    two_nodes.write_text("pretrain: {processes_per_node: 1, nodes: 2}\n")

    def snakemake(project, configfiles, *args):
        command = [sys.executable, "-m", "snakemake", *SLURM_RUN, *args, "--configfile", *map(str, [*configfiles, two_nodes])]
        return subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=project, env=slurm_cluster.environ())

    def said(result, run):  # what a job printed is in its SLURM log (the plugin keeps those of failed jobs)
        logs = sorted((run / ".snakemake" / "slurm_logs").rglob("*.log"))
        return result.stdout + result.stderr + "".join(log.read_text(errors="replace") for log in logs)

    started = time.monotonic()
    result = rehearse(base, snakemake, said)
    print(f"the rehearsal through SLURM: {time.monotonic() - started:.0f} s")
    output = {run: result[run].stdout + result[run].stderr for run in ("first", "second")}
    result["submitted"] = {run: {int(i) for i in SUBMITTED.findall(text)} for run, text in output.items()}
    result["output"] = output
    result["jobs"] = {j.job_id: j for j in slurm_cluster.wait_for_jobs(sum(map(len, result["submitted"].values())), timeout=60)}
    return result


def test_the_rehearsal_runs_every_job_through_sbatch(slurm_rehearsal):
    second, jobs = slurm_rehearsal["second"], slurm_rehearsal["jobs"]
    assert second.returncode == 0, slurm_rehearsal["output"]["second"][-4000:]
    for run, text in slurm_rehearsal["output"].items():
        # no job ran beside Snakemake, but the target rule `all`, which runs nothing (Snakemake does it itself)
        assert set(re.findall(r"^localrule (\w+):", text, flags=re.M)) <= {"all"}, run
        planned = len(re.findall(r"^(?:rule|checkpoint) \w+:", text, flags=re.M))  # a checkpoint: embedding_plan
        assert len(slurm_rehearsal["submitted"][run]) == planned > 0, run
    submitted = set().union(*slurm_rehearsal["submitted"].values())
    assert submitted <= set(jobs)  # SLURM's own record of each (jobcomp/filetxt)
    assert {jobs[i].state for i in slurm_rehearsal["submitted"]["second"]} == {"COMPLETED"}
    rules = {jobs[i].rule for i in slurm_rehearsal["submitted"]["second"]}
    assert {"parse_dataset", "tokenize", "ppi", "pretrain", "embed", "run_annotation", "aggregate", "summary"} <= rules, rules


def test_the_pretraining_spans_two_nodes_through_srun_and_torchrun(slurm_rehearsal):
    jobs = slurm_rehearsal["jobs"]
    (pretraining,) = [jobs[i] for i in slurm_rehearsal["submitted"]["second"] if jobs[i].rule == "pretrain"]
    assert pretraining.node_count == 2 and pretraining.state == "COMPLETED"
    log = (slurm_rehearsal["run"] / "logs" / "pretrain" / "celllm_paper.log").read_text()
    assert log.count("no checkpoint to resume yet, starting at step 0") == 2, log[-2000:]  # one rank per node


def test_each_manual_source_is_asked_for_once_by_one_failed_job(slurm_rehearsal):
    jobs, first = slurm_rehearsal["jobs"], slurm_rehearsal["submitted"]["first"]
    manual = set(slurm_rehearsal["mirror"].manual)
    assert sorted(source for source, _, _ in slurm_rehearsal["messages"]) == sorted(manual)  # each once: no retry
    failed = [jobs[i] for i in first if jobs[i].state == "FAILED"]
    assert len(failed) == len(manual) and {j.rule for j in failed} == {"download"}


def test_the_tables_equal_the_local_rehearsals(slurm_rehearsal, rehearsal):
    here, there = rehearsal["run"] / "results" / "tables", slurm_rehearsal["run"] / "results" / "tables"
    tables = sorted(p.name for p in here.glob("*.csv"))
    assert tables and tables == sorted(p.name for p in there.glob("*.csv"))
    for name in tables:
        assert (there / name).read_bytes() == (here / name).read_bytes(), name
