"""Colours of models and kinds: a model's own colour comes from its registration
(benchmarks.registry, `colour=`), so it looks the same in every figure; a model
without one (or no longer registered: figures are drawn from tables alone) takes
the next free shade of its kind's family.

Reading a registration imports the model's file, whose decorator records the metadata; it never
constructs or runs the model (tests/test_workflow.py redraws every figure in processes where
constructing any registered model fails)."""

from __future__ import annotations

from benchmarks import registry

FAMILIES = {
    "celllm": ["#08306b", "#2171b5", "#4292c6", "#084594", "#6baed6", "#9ecae1"],
    "baseline": ["#8c2d04", "#d94801", "#f16913", "#fd8d3c", "#a63603", "#fdae6b"],
    "control": ["#525252", "#969696", "#737373", "#bdbdbd"],
    "other": ["#6a51a3", "#807dba", "#9e9ac8"],
}
KIND_SWATCH = {"celllm": "#3182bd", "baseline": "#e6550d", "control": "#969696"}
KIND_LABELS = {"celllm": "CellLM", "baseline": "baseline", "control": "control"}


def _registered(model: str):
    try:
        return registry.get(model)
    except KeyError:
        return None


def model_kind(model: str) -> str:
    """Kind of a model known only by name (predictions without a run record beside them)."""
    spec = _registered(model)
    return spec.kind if spec else "other"


def model_colours(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Colour of each (model, kind): its registered colour, else the next unused shade of its kind's family."""
    colours, used = {}, set()
    for model, _ in pairs:
        spec = _registered(model)
        if spec is not None and spec.colour:
            colours[model] = spec.colour
            used.add(spec.colour)
    for model, kind in pairs:
        if model in colours:
            continue
        family = FAMILIES.get(kind, FAMILIES["other"])
        free = [c for c in family if c not in used] or family
        colours[model] = free[0]
        used.add(free[0])
    return colours
