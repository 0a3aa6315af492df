# CellLM reproduction: raw data -> gene embeddings -> pretraining -> benchmarks -> tables.
# The default config is the embedded demo; `--configfile config/paper.yaml` is the real run.
from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


# A profile may write its results/ and logs/ to a folder of its own (the paper
# config uses runs/paper), so demo and real results never mix.
if config.get("workdir"):

    workdir: config["workdir"]


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/ppi.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/tasks.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/perf.smk"


rule all:
    input:
        table_outputs(),
        figure_files(),
    default_target: True
