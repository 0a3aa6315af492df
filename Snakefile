# CellLM reproduction: raw data -> gene embeddings -> pretraining -> benchmarks -> tables.
from pathlib import Path

from snakemake.utils import min_version

min_version("8.0")


# The embedded demo is the default. A --configfile is a whole configuration of its own
# (several given together merge with each other), never merged over the demo, so no
# demo option leaks into the real run. The path is the project's, whatever the workdir.
if not workflow.overwrite_configfiles:

    configfile: Path(workflow.basedir) / "config" / "config.yaml"


# A configuration may write its results/ and logs/ to a folder of its own (the paper
# config uses runs/paper), so demo and real results never mix. Relative to the project,
# not to the current folder: a cluster job's Snakemake starts in the workdir already.
if config.get("workdir"):

    workdir: Path(workflow.basedir) / config["workdir"]


include: "workflow/rules/common.smk"
include: "workflow/rules/demo_data.smk"
include: "workflow/rules/real_data.smk"
include: "workflow/rules/ppi.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/tasks.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/perf.smk"
include: "workflow/rules/recipe.smk"


rule all:
    default_target: True
    input:
        table_outputs(),
        figure_files(),
        "results/summary.md",
