"""What the perf benchmarks share: synthetic cells, timing, peak memory, isolation, output.

Synthetic cells go through the library's own tokenizer, so the benchmarks see
exactly the tokens the model sees in training; only the counts are made up.
Timings are medians over repeated steps after warm-up steps. Peak memory is
the growth of the peak above what was in use when measuring began: on CPU
the process's peak resident set (VmHWM, reset first), on CUDA
`torch.cuda.max_memory_allocated`. Configurations whose memory is compared run
in fresh processes (`run_isolated`), so an earlier run's memory cannot hide or
inflate a peak, with the environment a user has: the default allocator and its
cache (no MALLOC_ variables), torch's default threads unless a benchmark names
them. `ResourceUse` samples private and shared memory while the work runs.

Note for shared machines: with more torch threads than idle cores, every
parallel region waits for a descheduled thread and steps can slow down tenfold
or more; pass --threads 1 there, and read `load_average_1min` in the record.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import fields
from importlib import import_module
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import scipy.sparse as sp
import torch

from celllm.config import PretrainConfig
from celllm.io import release_freed_memory
from celllm.model import EncoderConfig
from celllm.pretrain import precision
from celllm.tokens import TokenConfig, TokenizedCells, Vocabulary, tokenize

MB = 2**20
# Spread of detected genes per cell (log-normal sd): 10x data show a 2-3 fold
# range between the 10th and 90th percentile, about the simulator's library spread.
LENGTH_LOG_SD = 0.35
PROJECT_ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- synthetic cells
def synthetic_counts(n_cells: int, n_genes: int, zero_fraction: float, seed: int, length_log_sd: float = LENGTH_LOG_SD) -> sp.csr_matrix:
    """Random UMI-like counts (cells x genes) with about `zero_fraction` zeros.

    Each cell detects a log-normal number of genes with mean
    (1 - zero_fraction) * n_genes, at random positions, with counts >= 1
    (geometric: mostly 1-3, as in droplet data). Only the number and position
    of non-zeros matter for compute; values only pick expression bins.
    """
    if not 0.0 <= zero_fraction < 1.0:
        raise ValueError(f"zero_fraction must be in [0, 1), got {zero_fraction}")
    rng = np.random.default_rng(seed)
    mean_detected = max(1.0, (1.0 - zero_fraction) * n_genes)
    detected = np.exp(rng.normal(np.log(mean_detected) - length_log_sd**2 / 2, length_log_sd, n_cells))
    detected = np.clip(np.round(detected), 1, n_genes).astype(np.int64)
    columns = np.concatenate([np.sort(rng.choice(n_genes, k, replace=False)) for k in detected])
    counts = rng.geometric(0.5, columns.size).astype(np.float32)
    indptr = np.concatenate([[0], np.cumsum(detected)])
    return sp.csr_matrix((counts, columns, indptr), shape=(n_cells, n_genes))


def synthetic_cells(
    n_cells: int, n_genes: int, zero_fraction: float, tokens: TokenConfig, seed: int = 0
) -> tuple[TokenizedCells, Vocabulary]:
    """Synthetic counts tokenized by `celllm.tokens.tokenize`, with their vocabulary (genes G0, G1, ...)."""
    genes = [f"G{i}" for i in range(n_genes)]
    vocab = Vocabulary(genes)
    return tokenize(synthetic_counts(n_cells, n_genes, zero_fraction, seed), genes, vocab, tokens, source="synthetic"), vocab


def length_summary(lengths) -> dict:
    """Mean, median, max and sum of token counts (per cell or per sequence)."""
    lengths = np.asarray(lengths)
    return {"mean": float(lengths.mean()), "median": float(np.median(lengths)), "max": int(lengths.max()), "total": int(lengths.sum())}


# ---------------------------------------------------------------- models and devices
def encoder_config(values: dict | EncoderConfig | None, default: EncoderConfig) -> EncoderConfig:
    """An EncoderConfig from a dict of overrides (e.g. parsed from --encoder JSON), or `default`."""
    if values is None:
        return default
    if isinstance(values, EncoderConfig):
        return values
    return EncoderConfig.from_dict({**default.to_dict(), **values})


# The demo profile's model (config/config.yaml): what pretraining runs on a CPU.
CPU_ENCODER = EncoderConfig(dim=64, depth=2, heads=4, dim_head=16, ff_mult=2, nb_features=32)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The trainer's precision rule with the default config: bf16 autocast on CUDA, float32 on CPU."""
    return precision.autocast_dtype(PretrainConfig().precision, device)


def autocast(device: torch.device):
    """Context for forward passes under `autocast_dtype(device)` (a no-op on CPU)."""
    return precision.autocast(device.type, autocast_dtype(device))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def resolve_device(device: str | None) -> torch.device:
    """`device`, or CUDA when available, else CPU."""
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def set_threads(threads: int | None) -> int:
    """Use `threads` intra-op CPU threads (None keeps torch's default); returns the count in use."""
    if threads:
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment(device: torch.device) -> dict:
    """Where a benchmark ran: device, library versions, CPU threads."""
    info = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


# ---------------------------------------------------------------- timing
def time_steps(step: Callable[[int], object], warmup: int, repeats: int, device: torch.device) -> dict:
    """Run `step(i)` `warmup` times untimed, then `repeats` times timed.

    Returns `median_s` (the number to quote: seconds per step) and `seconds`
    (every timed step, for spread). CUDA work is synchronised before each clock read.
    """
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    for i in range(warmup):
        step(i)
    seconds = []
    for i in range(warmup, warmup + repeats):
        synchronize(device)
        began = time.perf_counter()
        step(i)
        synchronize(device)
        seconds.append(time.perf_counter() - began)
    return {"median_s": statistics.median(seconds), "seconds": seconds}


# ---------------------------------------------------------------- peak memory
def _resident_bytes() -> int:
    return psutil.Process().memory_info().rss


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_resident() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM, also ru_maxrss) of this process; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return _status_kib("VmHWM") * 1024 <= _resident_bytes() * 1.01 + MB
    except OSError:
        return False


class PeakMemory:
    """Peak memory used inside a `with` block, above what was in use when it began.

    `growth_bytes`: peak minus baseline, i.e. the extra memory the block needed
    (activations, temporaries). `peak_bytes`: the absolute peak.
    On CUDA: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`
    (tensor memory, without the caching allocator's slack). On CPU (Linux): the
    process's peak resident set (VmHWM) after resetting it through
    /proc/self/clear_refs; where that is not possible, the resident set sampled
    every millisecond by a thread (may miss very short spikes). The peak is what
    a user's process reaches, glibc's cache of freed blocks included; run the
    code once on a tiny input first so one-time costs (library code paged in,
    thread pools) fall into the baseline. `method` says how the peak was taken.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.baseline_bytes = self.peak_bytes = 0
        self.method = ""
        self._sampler: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline_bytes = torch.cuda.memory_allocated(self.device)
            self.method = "torch.cuda.max_memory_allocated"
        else:
            release_freed_memory()
            self.baseline_bytes = _resident_bytes()
            if _reset_peak_resident():
                self.method = "peak RSS (VmHWM after clear_refs reset)"
            else:
                self.method = "RSS sampled every 1 ms"
                self._sampler = threading.Thread(target=self._sample, daemon=True)
                self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, _resident_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        elif self._sampler is not None:
            self._stop.set()
            self._sampler.join()
            self.peak_bytes = max(self.peak_bytes, _resident_bytes())
        else:
            self.peak_bytes = _status_kib("VmHWM") * 1024

    @property
    def growth_bytes(self) -> int:
        return max(0, self.peak_bytes - self.baseline_bytes)


class ResourceUse:
    """What a user's process spends inside a `with` block, read from /proc/self/status by a thread every
    `interval` seconds while the work runs (Linux): peak private memory (RssAnon: the process's own,
    the allocator's cache included), peak shared file pages (RssFile: a mapped token store, libraries;
    shared with other processes), peak resident set (VmHWM, exact); CPU seconds (all threads) and wall."""

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peaks = {"RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._read()

    def _read(self) -> None:
        for field in self.peaks:
            self.peaks[field] = max(self.peaks[field], _status_kib(field))

    def __enter__(self) -> ResourceUse:
        gc.collect()
        _reset_peak_resident()
        self._read()
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._read()
        self.cpu_s, self.wall_s = time.process_time() - self._cpu, time.perf_counter() - self._wall
        self.peak_rss_mb = _status_kib("VmHWM") / 1024

    def record(self) -> dict:
        return {
            "peak_private_mb": self.peaks["RssAnon"] / 1024,
            "peak_shared_mb": self.peaks["RssFile"] / 1024,
            "peak_rss_mb": self.peak_rss_mb,
            "cpu_s": self.cpu_s,
            "wall_s": self.wall_s,
        }


# ---------------------------------------------------------------- isolation
_CHILD_CODE = "from benchmarks.perf.common import child_main; child_main()"


def run_isolated(target: str, kwargs: dict, env: dict | None = None) -> dict:
    """Call `target` ("package.module:function") with `kwargs` in a fresh Python process.

    `env` adds environment variables for the child (none by default: it runs as a user's process would).
    Arguments and result travel as JSON. The child's stderr (warnings, tracebacks)
    is passed on to this process's stderr; a failing child raises RuntimeError
    with the end of its stderr.
    """
    with tempfile.TemporaryDirectory(prefix="celllm-perf-") as tmp:
        request, answer = Path(tmp) / "request.json", Path(tmp) / "answer.json"
        request.write_text(json.dumps({"target": target, "kwargs": kwargs, "answer": str(answer)}))
        env = {**os.environ, **(env or {}), "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run([sys.executable, "-c", _CHILD_CODE, str(request)], capture_output=True, text=True, env=env)
        if done.stderr:
            sys.stderr.write(done.stderr)
        if done.returncode != 0 or not answer.exists():
            raise RuntimeError(f"{target}({kwargs}) failed in its subprocess (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(answer.read_text())


def child_main() -> None:
    """Entry point of `run_isolated`'s child: read the request, call, write the answer."""
    request = json.loads(Path(sys.argv[1]).read_text())
    module, function = request["target"].split(":")
    result = getattr(import_module(module), function)(**request["kwargs"])
    Path(request["answer"]).write_text(json.dumps(result))


# ---------------------------------------------------------------- targets and output
def target(description: str, ratio: float | None, threshold: float, at_least: bool = False) -> dict:
    """A reported (never asserted) target: `met` is ratio >= threshold if `at_least`, else ratio <= threshold."""
    met = None if ratio is None else bool(ratio >= threshold if at_least else ratio <= threshold)
    return {"description": description, "ratio": ratio, "threshold": threshold, "comparison": ">=" if at_least else "<=", "met": met}


def _number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def format_table(rows: list[dict], columns: list[str]) -> str:
    """Plain-text table of `rows` restricted to `columns` (3 significant digits, whole numbers from 1000)."""
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in columns if c in frame.columns]]
    return frame.to_string(index=False, float_format=_number, na_rep="-")


def format_targets(targets: dict) -> str:
    lines = []
    for name, t in targets.items():
        ratio = "n/a" if t["ratio"] is None else f"{t['ratio']:.3g}"
        verdict = {True: "MET", False: "NOT MET", None: "not measured"}[t["met"]]
        lines.append(f"target {name}: {ratio} {t['comparison']} {t['threshold']} -> {verdict}  ({t['description']})")
    return "\n".join(lines)


def _finite(value) -> object:
    """JSON has no NaN/inf: write them as null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(data: dict, path: str | Path) -> Path:
    """Write `data` as indented JSON atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(_finite(data), indent=2) + "\n")
    os.replace(partial, path)
    return path


# ---------------------------------------------------------------- command line
def benchmark_cli(
    description: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
    run_from_args: Callable[[argparse.Namespace], dict],
    table: Callable[[dict], str],
    argv: list[str] | None = None,
) -> int:
    """The shared CLI: options every benchmark has, then run, print the table and targets, write JSON.

    Common options: --out FILE.json, --device, --threads, --seed, --warmup,
    --repeats, --encoder '{"dim": 64, ...}' (EncoderConfig overrides).
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", help="JSON file to write (printed table only if omitted)")
    parser.add_argument("--device", help="cpu or cuda[:i] (default: cuda when available)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup", type=int, help="untimed steps before timing")
    parser.add_argument("--repeats", type=int, help="timed steps; the median is reported")
    parser.add_argument("--encoder", type=json.loads, help="JSON object of EncoderConfig fields to override")
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.encoder is not None:
        known = {f.name for f in fields(EncoderConfig)}
        if not isinstance(args.encoder, dict) or set(args.encoder) - known:
            parser.error(f"--encoder must be a JSON object with keys among {', '.join(sorted(known))}")
    set_threads(args.threads)
    result = run_from_args(args)
    print(table(result))
    if result.get("targets"):
        print(format_targets(result["targets"]))
    if args.out:
        print(f"wrote {write_json(result, args.out)}")
    return 0


def given(args: argparse.Namespace, *names: str) -> dict:
    """The named options that were given on the command line (not None), as run() keyword arguments."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
