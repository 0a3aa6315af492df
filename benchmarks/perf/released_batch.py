"""What the released batch-wide key stabiliser does to a cell's [CLS] embedding, and to what is fitted on it.

The authors' FAVOR+ kernel (OpenBioMed `performer_celllm.py`) stabilises the key
features with ONE max over the whole key tensor of the batch, so a cell's embedding
depends a little on its batch mates (celllm.model.attention); performer-pytorch
1.1.4 takes one max per cell and head, which makes a cell independent of its batch.
This benchmark measures that dependence in released mode (`encoder.attention:
released`, every cell padded to the checkpoint's `tokens.max_len`), for two models:

- `demo_released`: the project's pretrained checkpoint (`--checkpoint`, the demo's
  `results/pretrain/demo` by default), its trained weights run in released mode;
- `paper_head_random`: a released-format file with random weights at the paper's
  head size (dim_head 64, 266 random features; heads 4, dim 128, depth 2), written
  by the test suite's stand-in of the released model (`tests.fixtures.released`) and
  imported with `celllm.released.import_released` (padded to 6,000), so the
  imported path is what is measured.

Embedding variants, each over every cell of a dataset (the checkpoint's model: all
cells, `--max-cells` subsamples; the paper-head model, which costs about 15 times as
much per token: 128 cells per dataset, `--paper-head-cells`; subsamples are drawn at
random and kept in the data's order, and the output lists them):

- `authors`: batch-wide stabiliser, 32 cells at a time in the data's order
  (RELEASED_BATCH, the authors' inference batch; what `celllm embed` does);
- `per_cell`: one max per cell and head (performer-pytorch 1.1.4), same batches;
- `shuffled_s{0,1,2}`: batch-wide, the cells shuffled (numpy seed) into batches of 32;
- `batch_1`, `batch_64`: batch-wide, batches of 1 and 64 cells in the data's order;
- `per_cell_batch_1`: per cell and head, one cell at a time (the first 64 cells):
  against `per_cell` it is the float32 noise floor of a batch-independent computation.

Each variant is compared with `authors`: the largest and the median absolute
difference over every (cell, dimension), and both relative to the typical spread of
the embedding (`spread`: the median over dimensions of the standard deviation across
cells of the `authors` embedding); `cells_changed` is the share of cells with some
dimension moved by more than 1e-6. Shuffled seeds are pooled (max over seeds, median
over all of their differences).

Downstream (the checkpoint's model; random weights annotate nothing worth
comparing): cell-type annotation on pbmc68k_reduced and sim_pbmc with the linear
probe of the tables (benchmarks.models.celllm_common.LinearProbe, C picked on validation
macro F1) on the `authors`, `per_cell` and `shuffled` embeddings (probe seed s reads
shuffle seed s), split as the annotation task splits (70/10/20 stratified, the split
seeded by the run's seed, as benchmarks.runner does), seeds 0, 1, 2. Per variant:
accuracy and macro F1 as mean and standard deviation over seeds, and the share of
test cells predicted otherwise than by the `authors` probe on the same split; per
(dataset, metric): the largest change of the mean between any two variants against
the seed standard deviation (the mean over variants of each one's standard deviation
over seeds), and the largest change on one seed's split.

`python -m benchmarks.perf.released_batch --out results/perf/released_batch.json`
(reads results/data/{pbmc68k_reduced,sim_pbmc,sim_drug_sensitivity,sim_cell_lines}.h5ad
and the checkpoint; `snakemake --cores 2 perf` builds them first).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from benchmarks.perf.common import PROJECT_ROOT, benchmark_cli, environment, format_table, resolve_device
from celllm.errors import InputError

DATASETS = ("pbmc68k_reduced", "sim_pbmc", "sim_drug_sensitivity", "sim_cell_lines")
PROBE_DATASETS = ("pbmc68k_reduced", "sim_pbmc")  # cell-type annotation
DEFAULT_CHECKPOINT = "results/pretrain/demo"
SHUFFLE_SEEDS = (0, 1, 2)
PROBE_SEEDS = (0, 1, 2)
# the paper's head size (64 dims, 266 random features), a narrower and shallower model than the paper's
PAPER_HEAD = {"dim": 128, "depth": 2, "heads": 4, "dim_head": 64, "nb_features": 266, "ff_mult": 4}
PAPER_HEAD_SEED = 0
PAPER_HEAD_CELLS = 128  # per dataset: the paper-head model costs ~15x the demo's per token; 4 batches of 32, 2 of 64
NOISE_CELLS = 64  # the noise floor (per cell and head, alone against in batches of 32) is taken on the first cells
CHANGED = 1e-6  # a cell counts as changed when some dimension of its [CLS] moves by more (float32 noise is ~1e-7)
PROBE_VARIANTS = ("authors", "per_cell", "shuffled")  # shuffled: on probe seed s, the embedding of shuffle seed s


# ---------------------------------------------------------------- models
def released_mode(checkpoint):
    """(encoder, vocabulary, config) of a checkpoint folder with its weights run in released mode."""
    from celllm.checkpoint import load_encoder
    from celllm.model import CellLMEncoder

    encoder, vocab, cfg = load_encoder(checkpoint)
    if cfg.encoder.attention != "released":
        cfg = dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, attention="released"))
        released = CellLMEncoder.from_config(len(vocab), cfg)
        released.load_state_dict(encoder.state_dict())
        encoder = released
    return encoder.eval(), vocab, cfg


def paper_head_model(genes: list[str], folder: Path):
    """A random released-format model at the paper's head size, imported as `celllm import-released` does."""
    if str(PROJECT_ROOT) not in sys.path:  # the stand-in of the released file lives with the tests
        sys.path.append(str(PROJECT_ROOT))
    try:
        from tests.fixtures.released import write_released_checkpoint
    except ImportError as exc:
        raise InputError(f"{PROJECT_ROOT / 'tests/fixtures/released.py'}: the released-format stand-in is not importable ({exc})") from None
    from celllm.released import import_released

    write_released_checkpoint(folder / "checkpoint4_fixed.pth", len(genes), seed=PAPER_HEAD_SEED, **PAPER_HEAD)
    (folder / "genes.txt").write_text("".join(f"{g}\n" for g in genes))
    import_released(folder / "checkpoint4_fixed.pth", folder / "genes.txt", folder / "imported")
    return released_mode(folder / "imported")


# ---------------------------------------------------------------- embedding variants
@contextmanager
def key_max(encoder, mode: str):
    """Run the released attention of every layer with the key stabiliser `mode` ("batch" or "cell")."""
    for layer in encoder.layers:
        layer.attn.released_key_max = mode
    try:
        yield
    finally:
        for layer in encoder.layers:
            del layer.attn.released_key_max  # back to the class's "batch"


def embed_variant(encoder, cells, tokens, batch_size: int, order=None, mode: str = "batch", device: str = "cpu") -> np.ndarray:
    """[CLS] of every cell, `batch_size` at a time in `order` (None: the data's), rows in the data's order."""
    from celllm.embed import embed_tokens

    with key_max(encoder, mode):
        if order is None:
            return embed_tokens(encoder, cells, tokens, batch_size=batch_size, device=device)
        out = np.empty((len(cells), encoder.cfg.dim), dtype=np.float32)
        out[order] = embed_tokens(encoder, cells.select(order), tokens, batch_size=batch_size, device=device)
        return out


def variants(encoder, cells, tokens, device: str = "cpu") -> dict[str, np.ndarray]:
    from celllm.released import RELEASED_BATCH

    out = {
        "authors": embed_variant(encoder, cells, tokens, RELEASED_BATCH, device=device),
        "per_cell": embed_variant(encoder, cells, tokens, RELEASED_BATCH, mode="cell", device=device),
    }
    for seed in SHUFFLE_SEEDS:
        order = np.random.default_rng(seed).permutation(len(cells))
        out[f"shuffled_s{seed}"] = embed_variant(encoder, cells, tokens, RELEASED_BATCH, order=order, device=device)
    out["batch_1"] = embed_variant(encoder, cells, tokens, 1, device=device)
    out["batch_64"] = embed_variant(encoder, cells, tokens, 64, device=device)
    first = cells.select(np.arange(min(NOISE_CELLS, len(cells))))
    out["per_cell_batch_1"] = embed_variant(encoder, first, tokens, 1, mode="cell", device=device)  # against per_cell's first rows
    return out


def spread(embedding: np.ndarray) -> float:
    """The typical spread of an embedding: median over dimensions of the standard deviation across cells."""
    return float(np.median(embedding.std(axis=0)))


def compare(embeddings: dict[str, np.ndarray]) -> list[dict]:
    """Each comparison against `authors` (and the noise floor): max and median |difference|, absolute and relative."""
    scale = spread(embeddings["authors"])
    pairs = {
        "per_cell": [("authors", "per_cell")],
        "shuffled": [("authors", f"shuffled_s{s}") for s in SHUFFLE_SEEDS],
        "batch_1": [("authors", "batch_1")],
        "batch_64": [("authors", "batch_64")],
        "noise_floor": [("per_cell", "per_cell_batch_1")],
    }
    rows = []
    for name, which in pairs.items():
        moved = [np.abs(embeddings[a][: len(embeddings[b])] - embeddings[b]) for a, b in which]
        diffs = np.concatenate([m.ravel() for m in moved])
        largest, median = float(diffs.max()), float(np.median(diffs))
        changed = np.mean([(m.max(axis=1) > CHANGED).mean() for m in moved])
        rows.append(
            {
                "comparison": name,
                "cells": len(moved[0]),
                "max_abs": largest,
                "median_abs": median,
                "spread": scale,
                "max_rel": largest / scale,
                "median_rel": median / scale,
                "cells_changed": float(changed),
            }
        )
    return rows


# ---------------------------------------------------------------- downstream
def probe_variant(variant: str, seed: int) -> str:
    """The embedding a probe variant reads on a seed: the shuffled variant takes the seed's own shuffle."""
    return f"shuffled_s{SHUFFLE_SEEDS[seed % len(SHUFFLE_SEEDS)]}" if variant == "shuffled" else variant


def probe_once(adata, labels: np.ndarray, split: np.ndarray, embedding: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """The tables' linear probe (benchmarks.models.celllm_common.LinearProbe) fitted on `embedding`: test predictions and the C it chose."""
    from benchmarks.models import celllm_common
    from benchmarks.tasks.data import CellData

    table = dict(zip(adata.obs_names.astype(str), embedding))

    def lookup(cells, context):  # the probe reads this embedding instead of a checkpoint's
        return np.stack([table[name] for name in cells.obs_names.astype(str)])

    parts = {p: CellData(adata[split == p], labels[split == p]) for p in ("train", "val", "test")}
    with mock.patch.object(celllm_common, "cell_embeddings", lookup):
        probe = celllm_common.LinearProbe(seed, context=None)
        probe.fit(parts["train"], parts["val"])
        return np.asarray(probe.predict(parts["test"])).astype(str), float(probe.model[-1].C)


def probe_runs(adata, embeddings: dict[str, np.ndarray], seeds=PROBE_SEEDS, jobs: int = 1) -> list[dict]:
    """The probe on each variant's embedding, on the annotation task's split of each seed (`jobs` processes)."""
    from joblib import Parallel, delayed

    from benchmarks.metrics import classification_metrics
    from benchmarks.splits import split_units
    from benchmarks.tasks import get_task

    task = get_task("annotation")
    labels = adata.obs[task.target].astype(str).to_numpy()
    ids = adata.obs_names.astype(str).to_numpy()
    splits = {seed: split_units(ids, seed, task.settings["standard"], labels) for seed in seeds}  # as benchmarks.runner draws them
    todo = [(variant, seed) for seed in seeds for variant in PROBE_VARIANTS]
    done = Parallel(n_jobs=jobs)(
        delayed(probe_once)(adata, labels, splits[seed], embeddings[probe_variant(variant, seed)], seed) for variant, seed in todo
    )
    predictions = dict(zip(todo, done))
    rows = []
    for (variant, seed), (predicted, C) in predictions.items():
        truth = labels[splits[seed] == "test"]
        metrics = classification_metrics(truth, predicted)
        rows.append(
            {
                "variant": variant,
                "embedding": probe_variant(variant, seed),
                "seed": seed,
                "accuracy": metrics["accuracy"],
                "macro_f1": metrics["macro_f1"],
                "C": C,
                "test_cells": int(len(predicted)),
                "predictions_changed": float((predicted != predictions["authors", seed][0]).mean()),
            }
        )
    return rows


def summarise_probe(runs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per variant: mean and std over seeds; per metric: the largest change of the mean against the seed std."""
    per_variant = []
    for variant in PROBE_VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        row = {"variant": variant, "seeds": len(mine)}
        for metric in ("accuracy", "macro_f1"):
            values = np.array([r[metric] for r in mine])
            row[f"{metric}_mean"], row[f"{metric}_std"] = float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0
        row["predictions_changed_max"] = float(max(r["predictions_changed"] for r in mine))
        per_variant.append(row)
    summary = []
    for metric in ("accuracy", "macro_f1"):
        means = sorted((r[f"{metric}_mean"], r["variant"]) for r in per_variant)
        largest = means[-1][0] - means[0][0]  # between any two variants
        seed_std = float(np.mean([r[f"{metric}_std"] for r in per_variant]))  # the typical std over seeds of one variant
        paired = max(abs(a[metric] - b[metric]) for a in runs for b in runs if b["variant"] == "authors" and a["seed"] == b["seed"])
        summary.append(
            {
                "metric": metric,
                "largest_mean_change": float(largest),
                "between": f"{means[0][1]} / {means[-1][1]}",
                "seed_std": seed_std,
                "change_over_std": float(largest / seed_std) if seed_std > 0 else None,
                "largest_paired_change": float(paired),
                "beyond_seed_spread": bool(largest > seed_std),
            }
        )
    return per_variant, summary


# ---------------------------------------------------------------- the run
def read_datasets(data: dict[str, Path]) -> dict:
    from celllm.io import read_dataset

    out = {}
    for name, path in data.items():
        if not Path(path).exists():
            raise InputError(f"{path}: dataset not found (build it with `snakemake --cores 2 {path}`, or pass --data)")
        out[name] = read_dataset(path, scale_check=False)
    return out


def subsample(adata, max_cells: int | None, seed: int):
    """`max_cells` of the cells, drawn at random and kept in the data's order (all of them when there are fewer)."""
    if not max_cells or adata.n_obs <= max_cells:
        return adata
    return adata[np.sort(np.random.default_rng(seed).choice(adata.n_obs, max_cells, replace=False))].copy()


def run(
    data: dict[str, Path],
    checkpoint,
    max_cells: int | None = None,
    paper_head_cells: int | None = PAPER_HEAD_CELLS,
    probe_seeds=PROBE_SEEDS,
    seed: int = 0,
    device: str = "cpu",
    paper_head: bool = True,
    jobs: int = 1,
) -> dict:
    """Both models on every dataset; the checkpoint's on `max_cells` per dataset (None: all) with the probe, the paper-head
    model's (about 15 times the compute per token) on `paper_head_cells` per dataset, without it."""
    from celllm.tokens import tokenize

    began = time.perf_counter()
    datasets = read_datasets(data)
    genes = list(dict.fromkeys(g for adata in datasets.values() for g in adata.var_names.astype(str)))
    embedding_rows, probe_rows, summaries, models, subsampled = [], [], [], {}, []
    with tempfile.TemporaryDirectory(prefix="celllm-released-batch-") as tmp:
        plan = [("demo_released", lambda: released_mode(checkpoint), max_cells, True, str(checkpoint))]
        if paper_head:
            plan.append(
                (
                    "paper_head_random",
                    lambda: paper_head_model(genes, Path(tmp)),
                    paper_head_cells,
                    False,
                    f"tests.fixtures.released.write_released_checkpoint (seed {PAPER_HEAD_SEED}) -> celllm.released.import_released",
                )
            )
        for model_name, build, cells_each, probe, source in plan:
            encoder, vocab, cfg = build()
            models[model_name] = {
                "source": source,
                "encoder": cfg.encoder.to_dict(),
                "pad_to": encoder.pad_to,
                "truncation": cfg.tokens.truncation,
                "max_cells": cells_each,
                "probe": probe and bool(probe_seeds),
            }
            for name, full in datasets.items():
                adata = subsample(full, cells_each, seed)
                if adata.n_obs < full.n_obs:
                    subsampled.append({"model": model_name, "dataset": name, "cells": int(adata.n_obs), "of": int(full.n_obs)})
                cells = tokenize(adata.X, adata.var_names, vocab, cfg.tokens, source=name)
                started = time.perf_counter()
                embeddings = variants(encoder, cells, cfg.tokens, device)
                seconds = time.perf_counter() - started
                for row in compare(embeddings):
                    embedding_rows.append({"dataset": name, "model": model_name, **row, "embed_seconds": seconds})
                if probe and probe_seeds and name in PROBE_DATASETS:
                    started = time.perf_counter()
                    runs = probe_runs(adata, embeddings, probe_seeds, jobs)
                    seconds = time.perf_counter() - started
                    per_variant, summary = summarise_probe(runs)
                    probe_rows += [{"dataset": name, "model": model_name, "cells": int(adata.n_obs), **r} for r in per_variant]
                    summaries += [{"dataset": name, "model": model_name, **r, "probe_seconds": seconds} for r in summary]
                    models[model_name].setdefault("probe_runs", {})[name] = runs
    return {
        "benchmark": "released_batch",
        "environment": environment(torch.device(device)),
        "models": models,
        "datasets": {name: str(path) for name, path in data.items()},
        "subsampled": subsampled,
        "variants": {
            "authors": "batch-wide stabiliser, batches of 32 in the data's order (RELEASED_BATCH)",
            "per_cell": "one max per cell and head (performer-pytorch 1.1.4), batches of 32 in the data's order",
            "shuffled": f"batch-wide, cells shuffled into batches of 32 (seeds {list(SHUFFLE_SEEDS)}, pooled)",
            "batch_1": "batch-wide, one cell at a time",
            "batch_64": "batch-wide, batches of 64 in the data's order",
            "noise_floor": "per cell and head, batches of 1 against batches of 32 (float32 noise of a batch-independent computation)",
        },
        "spread": "median over dimensions of the standard deviation across cells of the authors-variant embedding",
        "embedding": embedding_rows,
        "probe": probe_rows,
        "probe_summary": summaries,
        "probe_seeds": list(probe_seeds),
        "seconds": time.perf_counter() - began,
    }


def _data_paths(args) -> dict[str, Path]:
    if args.data:
        return {Path(p).name.removesuffix(".h5ad"): Path(p) for p in args.data}
    return {name: Path(args.data_dir) / f"{name}.h5ad" for name in DATASETS}


def _run_from_args(args: argparse.Namespace) -> dict:
    device = str(resolve_device(args.device))
    return run(
        _data_paths(args),
        args.checkpoint,
        args.max_cells or None,
        args.paper_head_cells or None,
        tuple(args.probe_seeds),
        args.seed,
        device,
        not args.no_paper_head,
        torch.get_num_threads(),
    )


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", nargs="+", help=f"dataset files (.h5ad; default: {', '.join(DATASETS)} under --data-dir)")
    parser.add_argument("--data-dir", default="results/data")
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="a checkpoint folder, run in released mode")
    parser.add_argument("--max-cells", type=int, help="cells per dataset for the checkpoint's model (default: all; 0: all)")
    parser.add_argument(
        "--paper-head-cells", type=int, default=PAPER_HEAD_CELLS, help="cells per dataset for the paper-head model (0: all)"
    )
    parser.add_argument("--probe-seeds", type=int, nargs="*", default=list(PROBE_SEEDS), help="seeds of the linear probe (none: skip it)")
    parser.add_argument("--no-paper-head", action="store_true", help="measure the checkpoint only")


def table(result: dict) -> str:
    lines = [
        "[CLS] difference against the authors' batches (32 in the data's order), max and median over cells x dims; "
        f"rel = / spread (median per-dimension std across cells); cells_changed: share of cells moved by more than {CHANGED:g}",
        format_table(
            result["embedding"],
            ["dataset", "model", "comparison", "cells", "max_abs", "median_abs", "max_rel", "median_rel", "cells_changed"],
        ),
    ]
    if result["subsampled"]:
        lines.append(
            "subsampled (at random, data order kept): "
            + ", ".join(f"{r['model']} {r['dataset']} {r['cells']} of {r['of']} cells" for r in result["subsampled"])
        )
    if result["probe"]:
        lines += [
            "",
            f"annotation, linear probe on [CLS], seeds {result['probe_seeds']} (mean +- std; predictions_changed: share of test "
            "cells predicted otherwise than with the authors' batches, same seed)",
            format_table(
                [
                    {
                        **r,
                        "accuracy": f"{r['accuracy_mean']:.4f} +- {r['accuracy_std']:.4f}",
                        "macro_f1": f"{r['macro_f1_mean']:.4f} +- {r['macro_f1_std']:.4f}",
                    }
                    for r in result["probe"]
                ],
                ["dataset", "model", "variant", "accuracy", "macro_f1", "predictions_changed_max"],
            ),
            "",
            format_table(
                result["probe_summary"],
                [
                    "dataset",
                    "model",
                    "metric",
                    "largest_mean_change",
                    "between",
                    "seed_std",
                    "change_over_std",
                    "largest_paired_change",
                    "beyond_seed_spread",
                ],
            ),
        ]
    lines.append(f"{result['seconds']:.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return benchmark_cli(
        "The released batch-wide key stabiliser: [CLS] differences and downstream metrics.", _add_arguments, _run_from_args, table, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
