"""Style is part of the test command: ruff (lint and format) over the Python, snakefmt over the Snakefiles.

The rules live in pyproject.toml ([tool.ruff], [tool.snakefmt]); the versions are pinned in the
`test` extra, so a formatter release cannot fail CI on code nobody touched.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILES = ["Snakefile", "workflow/rules"]


def tool(name: str) -> str:
    """The tool beside this interpreter (the test environment's), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]'")
    return found


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["snakefmt", "--check", *SNAKEFILES]],
    ids=["ruff-check", "ruff-format", "snakefmt"],
)
def test_the_code_is_clean(command):
    done = subprocess.run([tool(command[0]), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"`{' '.join(command)}` found problems:\n{done.stdout}{done.stderr}"
