"""Which cells each job embeds, where one file is embedded in several jobs (a cluster's, each on its own GPU).

A plan cuts a file into shards, ranges of cells; each is embedded by `celllm.embed.embed_shard` into a shard
file, and `celllm.embed.gather_shards` writes the output `celllm embed` writes from them. A shard computes
exactly what the single job (`celllm.embed.embed_file`) computes for its cells, bit for bit: the single job
embeds the file a block of cells at a time and forms its forward batches within each block (by length; the
released encoder's in the file's order), so a range that begins and ends where the single job's blocks do is
embedded in the same blocks, batches and shapes. A shard is therefore a whole number of blocks (`plan_shards`
refuses any other size, `embed_shard` any range off the blocks); the gather hands the shards' rows to the single
job's writer, so the gathered file is the single job's, byte for byte (tests/test_shards.py). This module
imports no torch: the job that plans only counts cells.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from celllm.errors import InputError
from celllm.io import DatasetBlocks
from celllm.outputs import atomic_path

log = logging.getLogger(__name__)

PLAN_FORMAT = "celllm-shard-plan/1"


def plan_shards(n_obs: int, shard_cells: int, block_cells: int) -> list[tuple[int, int]]:
    """(start, stop) of each shard of `shard_cells` cells (the last one shorter) of a file of `n_obs` cells: one
    shard where the file has no more than `shard_cells` cells. ValueError unless `shard_cells` is a positive
    multiple of `block_cells`, the single job's block (celllm.embed.BLOCK_CELLS unless set)."""
    if shard_cells < 1 or block_cells < 1 or shard_cells % block_cells:
        raise ValueError(f"a shard of {shard_cells} cells is not a whole number of blocks of {block_cells} cells")
    return [(start, min(start + shard_cells, n_obs)) for start in range(0, n_obs, shard_cells)]


def write_plan(in_path, out_path, shard_cells: int, block_cells: int) -> list[tuple[int, int]]:
    """The shards of the .h5ad `in_path` (`plan_shards`), written to the JSON file `out_path`; its expression is not read."""
    with DatasetBlocks(in_path, scale_check=False) as dataset:
        n_obs = dataset.n_obs
    shards = plan_shards(n_obs, shard_cells, block_cells)
    plan = {"format": PLAN_FORMAT, "n_obs": n_obs, "shard_cells": shard_cells, "block_cells": block_cells, "shards": shards}
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(plan, indent=1) + "\n")
    log.info("%s: %d cells, %d shard(s) of at most %d cells", in_path, n_obs, len(shards), shard_cells)
    return shards


def read_plan(path) -> list[tuple[int, int]]:
    """(start, stop) of each shard of a plan `write_plan` wrote."""
    try:
        plan = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable shard plan ({type(exc).__name__})") from None
    if not isinstance(plan, dict) or plan.get("format") != PLAN_FORMAT:
        raise InputError(f"{path}: not a shard plan (expected format {PLAN_FORMAT})")
    return [(int(start), int(stop)) for start, stop in plan["shards"]]
