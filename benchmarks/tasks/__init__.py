"""The downstream tasks: one file per task, each defining `TASK` (a benchmarks.tasks.spec.Task).

Every module of this package is imported and its `TASK` registered, so adding a
task is one new file (and its datasets in the config). `spec` is the contract,
`cells` the kind shared by the cell classification tasks, `data` what models see.
"""

from __future__ import annotations

import importlib
import pkgutil

from benchmarks.tasks.spec import Setting, Task


def discover() -> dict[str, Task]:
    """Every task of the package, by name."""
    found = {}
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        task = getattr(importlib.import_module(f"{__name__}.{module.name}"), "TASK", None)
        if isinstance(task, Task):
            if task.name in found:
                raise ValueError(f"task name '{task.name}' is defined twice (benchmarks/tasks/{module.name}.py)")
            found[task.name] = task
    return found


TASKS = discover()


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task '{name}' (known: {', '.join(TASKS)})")
    return TASKS[name]


def setting_label(task: str, setting: str) -> str:
    """How figures name a setting: its task's label for it, else its own name (a table may hold
    a task or setting that is no longer defined: figures are drawn from files alone)."""
    spec = TASKS.get(task)
    return (spec.settings[setting].label if spec and setting in spec.settings else "") or setting


def task_setting(name: str, setting: str, fractions: dict | None = None) -> Setting:
    """One setting of a task, re-sized by its configured split fractions ({val:, test:, train:})."""
    task = get_task(name)
    if setting not in task.settings:
        raise ValueError(f"task '{name}': unknown setting '{setting}' (known: {', '.join(task.settings)})")
    return task.settings[setting].with_fractions(fractions or {})


def task_settings(name: str, config: dict | None = None) -> dict[str, Setting]:
    """The task's settings, restricted and re-sized by its config (`settings: {name: {val:, test:, train:}}`)."""
    task = get_task(name)
    chosen = (config or {}).get("settings") or {s: {} for s in task.settings}
    unknown = set(chosen) - set(task.settings)
    if unknown:
        raise ValueError(f"task '{name}': unknown setting(s) {', '.join(sorted(unknown))} (known: {', '.join(task.settings)})")
    return {s: task_setting(name, s, chosen[s]) for s in chosen}


__all__ = ["TASKS", "Setting", "Task", "discover", "get_task", "setting_label", "task_setting", "task_settings"]
