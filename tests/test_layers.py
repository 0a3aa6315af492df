"""The layers: workflow -> benchmarks -> ingest -> celllm, never upwards, and the model library
imports without the suite's dependencies (the `suite` extra of pyproject.toml)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# what each package may import of the project's own packages
ALLOWED = {"celllm": {"celllm"}, "ingest": {"ingest", "celllm"}, "benchmarks": {"benchmarks", "ingest", "celllm"}}
# import names of the `suite` extra's packages (and matplotlib, which seaborn brings); not psutil,
# which torch-geometric needs anyway
SUITE_MODULES = [
    "snakemake",
    "pygments",
    "scanpy",
    "sklearn",
    "igraph",
    "seaborn",
    "matplotlib",
    "deepchem",
    "jsonschema",
    "openpyxl",
    "rdkit",
    "rdata",
    "harmonypy",
    "benchmarks",
    "ingest",
]


def imported_packages(path: Path) -> set[str]:
    """Top-level names of every import in a file, module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_package_imports_a_layer_above_it():
    upward = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for name in imported_packages(path) & (set(ALLOWED) | {"snakemake"}):
                if name not in allowed:
                    upward.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not upward, "\n".join(upward)


def test_the_model_library_imports_without_the_suite():
    """Every celllm module imports (and the CLI starts) with the suite's packages made unimportable."""
    script = f"""
import importlib, pkgutil, sys
BLOCKED = {SUITE_MODULES!r}
for name in BLOCKED:  # None in sys.modules: `import name` fails, importlib.util.find_spec says not installed
    sys.modules[name] = None
import celllm
modules = [m.name for m in pkgutil.walk_packages(celllm.__path__, "celllm.") if m.name != "celllm.__main__"]
for name in modules:
    importlib.import_module(name)
from celllm.cli import main
for command in ("tokenize", "pretrain", "embed", "import-released"):
    assert main([command, "--help"]) == 0, command
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED and sys.modules[m] is not None)
assert not leaked, leaked
print(len(modules))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip().splitlines()[-1]) >= 15  # every module of the library was imported
