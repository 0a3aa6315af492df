"""Downstream tasks of the paper: their specs (spec.py), data views (data.py) and runner (run.py)."""

from benchmarks.tasks.spec import TASKS, Setting, Task, get_task, task_setting, task_settings

__all__ = ["TASKS", "Setting", "Task", "get_task", "task_setting", "task_settings"]
