"""Colours of models and kinds: a model's own colour comes from its registration
(benchmarks.registry, `colour=`), so it looks the same in every figure; a model
without one (or no longer registered: figures are drawn from tables alone) takes
the next free shade of its kind's family.

A figure imports no model: the registrations' kinds and colours (`benchmarks.registry.looks()`)
reach it as an argument, which the workflow's figure rules pass from the Snakefile's process
(tests/test_workflow.py redraws every figure in processes that refuse to import a model file)."""

from __future__ import annotations

FAMILIES = {
    "celllm": ["#08306b", "#2171b5", "#4292c6", "#084594", "#6baed6", "#9ecae1"],
    "baseline": ["#8c2d04", "#d94801", "#f16913", "#fd8d3c", "#a63603", "#fdae6b"],
    "control": ["#525252", "#969696", "#737373", "#bdbdbd"],
    "other": ["#6a51a3", "#807dba", "#9e9ac8"],
}
KIND_SWATCH = {"celllm": "#3182bd", "baseline": "#e6550d", "control": "#969696"}
KIND_LABELS = {"celllm": "CellLM", "baseline": "baseline", "control": "control"}


def model_kind(model: str, looks: dict | None = None) -> str:
    """Kind of a model known only by name (predictions without a run record beside them)."""
    return (looks or {}).get(model, {}).get("kind") or "other"


def model_colours(pairs: list[tuple[str, str]], looks: dict | None = None) -> dict[str, str]:
    """Colour of each (model, kind): its registered colour (`looks`: model -> {"kind", "colour"}), else the
    next unused shade of its kind's family."""
    colours, used = {}, set()
    for model, _ in pairs:
        colour = (looks or {}).get(model, {}).get("colour")
        if colour:
            colours[model] = colour
            used.add(colour)
    for model, kind in pairs:
        if model in colours:
            continue
        family = FAMILIES.get(kind, FAMILIES["other"])
        free = [c for c in family if c not in used] or family
        colours[model] = free[0]
        used.add(free[0])
    return colours
