"""Downstream tasks of the paper. Each task names its label column, runner and headline metrics."""

from benchmarks.tasks.classification import CLASSIFICATION_TASKS, HEADLINE_METRICS

TASKS = dict(CLASSIFICATION_TASKS)
TABLE_METRICS = {task: HEADLINE_METRICS for task in CLASSIFICATION_TASKS}
