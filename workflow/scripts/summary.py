from _shim import log_to_file

log_to_file(snakemake)

from benchmarks.summary import shown_metrics, write_summary
from benchmarks.tasks import get_task

tasks = list(snakemake.config["tasks"])
write_summary(
    dict(zip(tasks, snakemake.input.tables)), snakemake.input.records, {t: shown_metrics(get_task(t)) for t in tasks}, snakemake.output[0]
)
