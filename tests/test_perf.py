"""Smoke tests of the perf benchmarks at tiny sizes, and the GPU benchmark's FLOP model."""

import json
import math

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.perf import common, dnc, gpu, tokens
from celllm.model import CellLMEncoder, EncoderConfig
from celllm.tokens import TokenConfig

TINY = {"dim": 16, "depth": 1, "heads": 2, "dim_head": 8, "ff_mult": 2, "nb_features": 8}


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


# ---------------------------------------------------------------- common
def test_synthetic_cells_have_the_requested_sparsity():
    cells, vocab = common.synthetic_cells(200, 500, 0.9, TokenConfig(), seed=1)
    lengths = cells.lengths()
    assert len(cells) == 200 and len(vocab) == 500
    assert 1 - lengths.mean() / 500 == pytest.approx(0.9, abs=0.01)
    assert lengths.min() >= 1 and lengths.max() > 1.5 * lengths.mean()  # cells differ in depth


def test_peak_memory_sees_an_allocation():
    with common.PeakMemory(torch.device("cpu")) as memory:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
        del block
    assert memory.growth_bytes > 50 * 2**20 and memory.peak_bytes > memory.growth_bytes


def test_resource_use_sees_private_and_shared_memory_while_it_is_held(tmp_path):
    """Reference: what was allocated and mapped, by size. Both are freed before the block ends, so only sampling sees them."""
    import mmap
    import time

    path = tmp_path / "store.bin"
    path.write_bytes(b"\1" * (96 * 2**20))
    with common.ResourceUse(interval=0.002) as use:
        private = np.ones(128 * 2**20 // 8)  # 128 MiB, touched
        with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            assert sum(mapped[i] for i in range(0, len(mapped), 4096)) == len(mapped) // 4096  # every page read
            time.sleep(0.05)
        del private
    record = use.record()
    assert record["peak_private_mb"] > 120 and record["peak_shared_mb"] > 90 and record["peak_rss_mb"] > 200
    assert record["cpu_s"] > 0 and record["wall_s"] >= 0.05


def test_write_json_is_atomic_and_drops_non_finite(tmp_path):
    path = common.write_json({"a": float("nan"), "b": [1.0, float("inf")]}, tmp_path / "sub" / "x.json")
    assert json.loads(path.read_text()) == {"a": None, "b": [1.0, None]}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


# ---------------------------------------------------------------- dnc
DNC_ARGS = dict(
    sub_batch_size=2, sub_batch_tokens=0, encoder=TINY, n_genes=60, zero_fraction=0.8, warmup=0, repeats=1, device="cpu", threads=1, seed=0
)


def test_dnc_measures_one_configuration_in_a_fresh_process():
    kwargs = {"measure": "memory", "method": "dnc", "batch_size": 4, **DNC_ARGS}
    row = common.run_isolated("benchmarks.perf.dnc:measure_step", kwargs)
    assert row["method"] == "dnc" and row["batch_size"] == 4
    assert row["peak_mb"] >= 0 and _positive(row["peak_absolute_mb"]) and "VmHWM" in row["memory_method"]


def test_dnc_sweep_writes_documented_json(tmp_path):
    out = tmp_path / "dnc.json"
    argv = [
        "--out",
        str(out),
        "--batch-sizes",
        "2",
        "4",
        "--sub-batch-size",
        "2",
        "--n-genes",
        "60",
        "--zero-fraction",
        "0.8",
        "--encoder",
        json.dumps(TINY),
        "--warmup",
        "0",
        "--repeats",
        "1",
        "--threads",
        "1",
        "--in-process",
    ]
    assert dnc.main(argv) == 0
    result = json.loads(out.read_text())
    assert {"environment", "model", "data", "settings", "runs", "comparisons", "targets"} <= set(result)
    assert result["environment"]["torch"] == torch.__version__ and result["environment"]["torch_threads"] == 1
    assert [(r["method"], r["batch_size"]) for r in result["runs"]] == [("full", 2), ("dnc", 2), ("full", 4), ("dnc", 4)]
    for row in result["runs"]:
        assert _positive(row["seconds_per_step"]) and _positive(row["cells_per_s"]) and _positive(row["peak_absolute_mb"])
        assert row["peak_mb"] >= 0 and row["padded_tokens"] >= row["real_tokens"] > 0
    assert result["data"]["nonzero_genes_per_cell"]["mean"] > 0 and result["model"]["n_parameters"] > 0
    for name in ("dnc_memory_flat", "dnc_time_overhead"):
        t = result["targets"][name]
        assert t["threshold"] == 1.3 and t["comparison"] == "<=" and t["met"] in (True, False, None)
    assert _positive(result["targets"]["dnc_time_overhead"]["ratio"])


# ---------------------------------------------------------------- tokens
def test_tokens_benchmark_compares_three_representations(tmp_path):
    out = tmp_path / "tokens.json"
    argv = [
        "--out",
        str(out),
        "--n-genes",
        "100",
        "--batch-size",
        "2",
        "--encoder",
        json.dumps(TINY),
        "--warmup",
        "0",
        "--repeats",
        "2",
        "--threads",
        "1",
    ]
    assert tokens.main(argv) == 0
    result = json.loads(out.read_text())
    modes = {m["mode"]: m for m in result["modes"]}
    assert set(modes) == {"nonzero_dynamic", "nonzero_fixed", "dense"}
    assert all(_positive(m["cells_per_s"]) and _positive(m["seconds_per_batch"]) for m in modes.values())
    assert modes["dense"]["tokens_per_cell"] == 101 and modes["nonzero_fixed"]["tokens_per_cell"] == tokens.scaled_max_len(100) == 31
    assert modes["nonzero_dynamic"]["tokens_per_cell"] <= modes["nonzero_fixed"]["tokens_per_cell"]
    assert result["data"]["paper_scale"] == {"n_genes": 19379, "max_len": 6000}
    assert all(_positive(v) for v in result["ratios"].values())
    assert result["targets"]["nonzero_vs_dense"]["threshold"] == 5.0


def test_dense_batch_puts_every_gene_after_cls():
    cfg = TokenConfig()
    batch = tokens.dense_batch([(np.array([1, 3]), np.array([2, 5]))], 4, cfg)
    assert batch["gene_ids"].tolist() == [[4, 0, 1, 2, 3]]
    assert batch["bins"].tolist() == [[cfg.cls_bin, 0, 2, 0, 5]] and batch["mask"].all()


# ---------------------------------------------------------------- gpu
@pytest.mark.parametrize("cfg", [EncoderConfig(**TINY), EncoderConfig(dim=24, depth=2, heads=3, dim_head=8, ff_mult=3, nb_features=10)])
def test_flop_model_matches_torch_flop_counter(cfg):
    model = CellLMEncoder(30, 9, cfg)
    shape = (3, 7)
    inputs = (torch.randint(0, 30, shape), torch.randint(0, 6, shape), torch.ones(shape, dtype=torch.bool))
    with FlopCounterMode(display=False) as forward:
        model(*inputs)
    with FlopCounterMode(display=False) as training:
        model(*inputs).pow(2).mean().backward()
    n_tokens = shape[0] * shape[1]
    assert forward.get_total_flops() == sum(gpu.forward_flops_per_token(cfg).values()) * n_tokens
    assert training.get_total_flops() == gpu.training_flops(cfg, n_tokens)


def test_flop_model_of_the_paper_model():
    forward = sum(gpu.forward_flops_per_token(EncoderConfig()).values())
    assert forward == 10 * (6 * 512 * 1024 + 2 * 1024 * 512 + 4 * 512 * 2048 + 16 * (4 * 64 * 266 + 4 * 266 * 64 + 2 * 266))
    assert gpu.training_flops_per_token(EncoderConfig()) == pytest.approx(306.4e6, rel=1e-3)


def test_peak_table_and_override():
    assert gpu.peak_bf16_flops("NVIDIA H100 80GB HBM3")[0] == pytest.approx(989.4e12)
    assert gpu.peak_bf16_flops("NVIDIA H100 PCIe")[0] == pytest.approx(756e12)
    assert gpu.peak_bf16_flops("NVIDIA H200")[0] == pytest.approx(989.4e12)
    assert gpu.peak_bf16_flops("NVIDIA A100-SXM4-80GB")[0] == pytest.approx(312e12)
    assert gpu.peak_bf16_flops("Some Future GPU") == (None, "unknown GPU: pass --peak-tflops")
    assert gpu.peak_bf16_flops("NVIDIA H100 PCIe", override_tflops=100.0) == (100e12, "--peak-tflops")


def test_gpu_measurement_runs_on_cpu_at_tiny_size():
    result = gpu.measure(
        torch.device("cpu"), EncoderConfig(**TINY), batch_size=2, n_genes=60, zero_fraction=0.8, warmup=0, repeats=2, peak_flops=1e12
    )
    for key in ("seconds_per_step_median", "cells_per_s", "model_flops_per_s", "flops_per_s_with_padding", "mfu", "peak_memory_mb"):
        assert _positive(result[key]), key
    assert result["tokens_per_step"]["padded"] >= result["tokens_per_step"]["real"] > 0
    assert result["mfu_with_padding"] >= result["mfu"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the record written where there is no GPU")
def test_gpu_benchmark_without_cuda_writes_unavailable_record(tmp_path):
    out = tmp_path / "gpu.json"
    assert gpu.main(["--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["available"] is False and result["reason"]
    assert result["flop_model"]["training_flops_per_token"] == gpu.training_flops_per_token(EncoderConfig())
    assert result["targets"]["mfu"] == {
        "description": "model FLOP/s / dense bf16 peak",
        "ratio": None,
        "threshold": 0.4,
        "comparison": ">=",
        "met": None,
    }


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_benchmark_on_cuda_at_tiny_size():
    result = gpu.run(batch_size=2, n_genes=200, encoder=TINY, warmup=1, repeats=2, peak_tflops=100.0)
    assert result["available"] is True and _positive(result["cells_per_s"]) and _positive(result["mfu"])


# ---------------------------------------------------------------- corpus
def test_corpus_benchmark_measures_store_memory_preparation_and_embed(tmp_path, monkeypatch):
    """The whole record at a tiny size, each measurement called in-process (the benchmark runs them in fresh processes)."""
    from importlib import import_module

    from benchmarks.perf import corpus

    def in_process(target, kwargs, env=None):
        module, function = target.split(":")
        return getattr(import_module(module), function)(**kwargs)

    monkeypatch.setattr(corpus, "run_isolated", in_process)
    monkeypatch.setattr(corpus, "GLOBAL_BATCH", 64)
    result = corpus.run(sizes=(120, 240), n_genes=300, threads=1)
    small, large = result["rows"]
    assert small["tokenize"]["n_tokens"] > 0 and small["tokenize"]["bytes_per_token"] < 4  # uint16 ids + uint8 bins + offsets
    assert _positive(large["pretrain_memory"]["peak_private_mb"]) and _positive(large["pretrain_memory"]["peak_shared_mb"])
    assert large["batch_preparation"]["ranks_8"]["cells"] == 8 and _positive(large["batch_preparation"]["ranks_1"]["seconds_per_step"])
    assert _positive(large["embed"]["peak_rss_mb"]) and _positive(large["embed"]["cpu_s"])
    assert large["embed"]["peak_private_mb"] <= large["embed"]["peak_rss_mb"] * 1.01  # private memory is part of the resident set
    assert set(result["targets"]) == {"private_memory", "bytes_per_token", "batch_preparation", "embed_rss"}
    assert all(t["met"] in (True, False) for t in result["targets"].values())
    assert result["paper_corpus_estimate"]["store_gb"] > 0 and "prep_8_ranks_s" in corpus.table(result)
    assert _positive(large["verify"]["with_hashes"]["seconds"])
    step = corpus.analytic_step_seconds(300_000)
    assert 0.1 < step["seconds"] < 1.0  # the 0.3-0.4 s per rank on 8 H200s


# ---------------------------------------------------------------- embedding metrics
def test_embedding_metrics_benchmark_times_each_metric_and_extrapolates(tmp_path):
    from benchmarks.perf import embedding

    out = tmp_path / "embedding.json"
    assert embedding.main(["--out", str(out), "--cells", "120", "240", "--dims", "16"]) == 0
    result = json.loads(out.read_text())
    assert [row["cells"] for row in result["seconds"]] == [120, 240]
    metrics = {"leiden_ari_nmi", "knn_transfer", "asw_label", "asw_batch", "ilisi"}
    assert set(result["exponent"]) == metrics and all(row[m] > 0 for row in result["seconds"] for m in metrics)
    zheng, baron = result["at_paper_size"]["zheng68k"], result["at_paper_size"]["baron"]
    assert zheng["per_seed_total"] > baron["per_seed_total"] > 0  # extrapolated upwards, never below linear
