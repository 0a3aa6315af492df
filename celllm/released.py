"""The authors' released CellLM (OpenBioMed), imported into a checkpoint folder of this project.

The released files (`checkpoint4_fixed.pth` for annotation, `ckpt.pth` and
`nocls_fixed.pth` for drug response) hold a dict whose `model_state_dict` is the
state of a copy of performer-pytorch's Performer with a gene-indexed positional
table. Its keys (prefix `performer.net.layers.{i}.` per layer):

    token_emb.weight                          (8, dim)        bins 0-5, [CLS] 6, PAD 7
    pos_emb.emb.weight                        (genes + 2, dim) float64: the genes, [CLS] (ones), PAD (zeros)
    performer.calls_since_last_redraw         ()              a counter, not a weight
    0.norm.{weight,bias}, 0.fn.to_{q,k,v}.weight, 0.fn.to_out.{weight,bias},
    0.fn.fast_attention.projection_matrix     attention (pre-LayerNorm), FAVOR+ random features
    1.norm.{weight,bias}, 1.fn.fn.w{1,2}.{weight,bias}                          feed-forward
    norm.{weight,bias}, to_out.{weight,bias}  final norm, the 8-way expression head

`import_released` reads the file with `weights_only=True`, checks every key and
shape against the sizes the file itself implies (147 keys and 51,926,536
parameters at paper size), maps the weights onto `CellLMForPretraining`
(q, k, v fused in that order, the float64 table cast, a zero [MASK] bin row
added, the 8-way head kept), and writes a checkpoint folder with the released
attention (`encoder.attention: released`: padding keys counted as in a cell padded
to 6,000 tokens, keys stabilised by one max over the batch as the authors' kernel
does, cells embedded `RELEASED_BATCH` at a time in the data's order), the released binning and cut (floor and clip at 5; cells cut at
6,000 tokens in vocabulary order) and this project's normalisation (the released
code's most likely recipe), and `vocab.txt` in the released gene order. The
contrastive and tissue heads, which the released model does not have, start
from a seeded random initialisation. Nothing is written when anything is wrong.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch

from celllm.config import CellLMConfig
from celllm.errors import InputError
from celllm.tokens import Vocabulary

log = logging.getLogger(__name__)

PAPER_N_GENES = 19_379  # genes of the authors' model: the paper's panel and the released gene table's rows
RELEASED_MAX_LEN = 6000  # tokens per cell, [CLS] included, in the released code
RELEASED_BIN_TOKENS = 8  # bins 0-5, [CLS], PAD
# Cells per inference batch, in the data's order: OpenBioMed's cell-type script runs CellLM with
# --batch_size 32 (scripts/aidd/ctc/train.sh) and evaluates with an unshuffled DataLoader
# (open_biomed/tasks/cell_task/ctc.py). The released kernel stabilises keys over the whole batch,
# so a cell's output depends on its 31 batch mates (celllm.model.attention; measured: benchmarks.perf.released_batch).
RELEASED_BATCH = 32
LAYER = "performer.net.layers.{i}."
REDRAW_COUNTER = "performer.calls_since_last_redraw"
REPORT = "released.json"  # beside the weights: where they came from and how the genes were mapped
IMPORTED = "import-released"  # the command, in the record of the checkpoints it writes


def layer_keys(i: int) -> dict[str, str]:
    """The released keys of layer i, by role."""
    p = LAYER.format(i=i)
    return {
        "attn_norm.weight": p + "0.norm.weight",
        "attn_norm.bias": p + "0.norm.bias",
        "q": p + "0.fn.to_q.weight",
        "k": p + "0.fn.to_k.weight",
        "v": p + "0.fn.to_v.weight",
        "attn.to_out.weight": p + "0.fn.to_out.weight",
        "attn.to_out.bias": p + "0.fn.to_out.bias",
        "attn.projection_matrix": p + "0.fn.fast_attention.projection_matrix",
        "ff_norm.weight": p + "1.norm.weight",
        "ff_norm.bias": p + "1.norm.bias",
        "ff.up.weight": p + "1.fn.fn.w1.weight",
        "ff.up.bias": p + "1.fn.fn.w1.bias",
        "ff.down.weight": p + "1.fn.fn.w2.weight",
        "ff.down.bias": p + "1.fn.fn.w2.bias",
    }


def expected_shapes(n_genes: int, dim: int, depth: int, heads: int, dim_head: int, nb_features: int, ff_width: int) -> dict[str, tuple]:
    """Every key of a released state dict with these sizes, and its shape."""
    inner = heads * dim_head
    shapes = {
        "token_emb.weight": (RELEASED_BIN_TOKENS, dim),
        "pos_emb.emb.weight": (n_genes + 2, dim),
        REDRAW_COUNTER: (),
        "norm.weight": (dim,),
        "norm.bias": (dim,),
        "to_out.weight": (RELEASED_BIN_TOKENS, dim),
        "to_out.bias": (RELEASED_BIN_TOKENS,),
    }
    for i in range(depth):
        keys = layer_keys(i)
        shapes.update(
            {
                keys["attn_norm.weight"]: (dim,),
                keys["attn_norm.bias"]: (dim,),
                keys["q"]: (inner, dim),
                keys["k"]: (inner, dim),
                keys["v"]: (inner, dim),
                keys["attn.to_out.weight"]: (dim, inner),
                keys["attn.to_out.bias"]: (dim,),
                keys["attn.projection_matrix"]: (nb_features, dim_head),
                keys["ff_norm.weight"]: (dim,),
                keys["ff_norm.bias"]: (dim,),
                keys["ff.up.weight"]: (ff_width, dim),
                keys["ff.up.bias"]: (ff_width,),
                keys["ff.down.weight"]: (dim, ff_width),
                keys["ff.down.bias"]: (dim,),
            }
        )
    return shapes


def read_released(path) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict of a released file (its `model_state_dict`, or the file itself if it is one),
    with a prefix common to every key (e.g. 'module.') removed; and a note of what was done."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: released checkpoint not found")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles with code, truncated files, other formats
        raise InputError(
            f"{path}: not a readable PyTorch checkpoint of tensors only ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        ) from None
    if not isinstance(loaded, dict):
        raise InputError(f"{path}: expected a dict with 'model_state_dict', found {type(loaded).__name__}")
    state, note = (loaded["model_state_dict"], "model_state_dict") if "model_state_dict" in loaded else (loaded, "the file's own dict")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InputError(f"{path}: 'model_state_dict' is not a mapping of names to tensors")
    if "token_emb.weight" not in state:
        prefixes = {key.split(".", 1)[0] + "." for key in state}
        if len(prefixes) == 1 and (prefix := prefixes.pop()) and f"{prefix}token_emb.weight" in state:
            state = {key[len(prefix) :]: value for key, value in state.items()}
            note += f", prefix '{prefix}' removed"
    return state, note


def released_sizes(state: dict[str, torch.Tensor], source: str) -> dict[str, int]:
    """The sizes a released state dict implies; InputError naming the first missing, extra or misshapen key."""
    for key in (
        "token_emb.weight",
        "pos_emb.emb.weight",
        layer_keys(0)["q"],
        layer_keys(0)["attn.projection_matrix"],
        layer_keys(0)["ff.up.weight"],
    ):
        if key not in state:
            raise InputError(f"{source}: missing key '{key}' (not a released CellLM state dict?)")
    depth = 1 + max(int(m.group(1)) for key in state if (m := re.match(r"performer\.net\.layers\.(\d+)\.", key)))
    nb_features, dim_head = state[layer_keys(0)["attn.projection_matrix"]].shape
    inner, dim = state[layer_keys(0)["q"]].shape
    sizes = {
        "n_genes": state["pos_emb.emb.weight"].shape[0] - 2,
        "dim": dim,
        "depth": depth,
        "heads": inner // dim_head,
        "dim_head": dim_head,
        "nb_features": nb_features,
        "ff_width": state[layer_keys(0)["ff.up.weight"]].shape[0],
    }
    if inner % dim_head or sizes["ff_width"] % dim:
        raise InputError(
            f"{source}: attention width {inner} is not a multiple of the head size {dim_head}, or the feed-forward width {sizes['ff_width']} of {dim}"
        )
    expected = expected_shapes(**sizes)
    for key, shape in expected.items():
        if key not in state:
            raise InputError(f"{source}: missing key '{key}'")
        if tuple(state[key].shape) != shape:
            raise InputError(f"{source}: key '{key}' has shape {tuple(state[key].shape)}, expected {shape}")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise InputError(f"{source}: unexpected key '{extra[0]}'" + (f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""))
    return sizes


def read_gene_order(path, n_genes: int) -> list[str]:
    """The symbols of the released gene table's rows: a text file (one per line) or an .h5ad (its var_names)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: gene order file not found")
    from celllm.io import dataset_genes, read_text_lines

    if path.suffix == ".h5ad":
        genes, where = dataset_genes(path), "gene"
    else:
        genes = [line.strip() for line in read_text_lines(path, "gene order file")]
        while genes and not genes[-1]:
            genes.pop()
        where = "line"
    if len(genes) != n_genes:
        raise InputError(f"{path}: {len(genes)} genes, but the checkpoint's gene table has {n_genes} rows")
    seen = {}
    for number, gene in enumerate(genes, start=1):
        if not gene:
            raise InputError(f"{path}: {where} {number} is empty")
        if gene in seen:
            raise InputError(f"{path}: gene '{gene}' is listed twice ({where}s {seen[gene]} and {number})")
        seen[gene] = number
    return genes


def map_symbols(genes: list[str], hgnc=None) -> tuple[list[str], dict]:
    """The released genes in this project's symbol space (HGNC approved, celllm.genes), and what changed.

    A gene whose approved symbol another row already took keeps its own name, so every row keeps one gene.
    """
    if hgnc is None:
        return list(genes), {"mapped": False, "renamed": 0, "unknown": None, "kept_for_a_clash": 0}
    from celllm.genes import GeneSymbols

    symbols = GeneSymbols.from_hgnc(hgnc)
    names, taken = set(genes), set()  # a row's own name is never taken by another row's renaming
    mapped = []
    renamed = unknown = clashes = 0
    for gene in genes:
        symbol = symbols.symbol(gene)
        if symbol is None or symbol not in symbols.approved:
            unknown += 1
            symbol = gene
        elif symbol != gene and (symbol in names or symbol in taken):
            clashes += 1
            symbol = gene
        elif symbol != gene:
            renamed += 1
            taken.add(symbol)
        mapped.append(symbol)
    return mapped, {"mapped": True, "renamed": renamed, "unknown": unknown, "kept_for_a_clash": clashes}


def released_config(sizes: dict, max_len: int = RELEASED_MAX_LEN) -> CellLMConfig:
    """The released model's sizes with its attention, binning and cut; this project's normalisation (scale to 1e4, log2(1 + x))."""
    return CellLMConfig.from_dict(
        {
            "encoder": {
                "dim": sizes["dim"],
                "depth": sizes["depth"],
                "heads": sizes["heads"],
                "dim_head": sizes["dim_head"],
                "ff_mult": sizes["ff_width"] // sizes["dim"],
                "nb_features": sizes["nb_features"],
                "dropout": 0.0,
                "feature_redraw_interval": 1000,
                "attention": "released",
            },
            "tokens": {"binning": "floor_clip", "n_bins": 6, "target_sum": 1e4, "max_len": max_len, "truncation": "vocabulary_order"},
            "pretrain": {"mlm_classes": RELEASED_BIN_TOKENS, "gene_embeddings": "frozen"},
        },
        "released model",
    )


def released_weights(state: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """`model`'s state dict with the encoder and masked-bin head taken from the released `state`."""
    ours = {key: value.clone() for key, value in model.state_dict().items()}
    ours["encoder.gene_embedding.weight"] = state["pos_emb.emb.weight"].to(torch.float32)
    bins = torch.zeros_like(ours["encoder.bin_embedding.weight"])  # the [MASK] row (pretraining only) stays zero
    bins[:RELEASED_BIN_TOKENS] = state["token_emb.weight"]
    ours["encoder.bin_embedding.weight"] = bins
    for i in range(model.encoder.cfg.depth):
        keys, mine = layer_keys(i), f"encoder.layers.{i}."
        ours[mine + "attn.to_qkv.weight"] = torch.cat([state[keys["q"]], state[keys["k"]], state[keys["v"]]])
        for role in (
            "attn_norm.weight",
            "attn_norm.bias",
            "attn.to_out.weight",
            "attn.to_out.bias",
            "attn.projection_matrix",
            "ff_norm.weight",
            "ff_norm.bias",
            "ff.up.weight",
            "ff.up.bias",
            "ff.down.weight",
            "ff.down.bias",
        ):
            ours[mine + role] = state[keys[role]].to(ours[mine + role].dtype)
    for name in ("weight", "bias"):
        ours[f"encoder.norm.{name}"] = state[f"norm.{name}"]
        ours[f"mlm_head.{name}"] = state[f"to_out.{name}"]
    return ours


def import_released(checkpoint, genes, out, hgnc=None, max_len: int = RELEASED_MAX_LEN, seed: int = 0) -> dict:
    """`celllm import-released`: the released file `checkpoint` as a checkpoint folder `out`. Returns the import report."""
    from celllm.checkpoint import KIND, save_checkpoint
    from celllm.outputs import check_output_folder, file_sha256
    from celllm.pretrain.model import CellLMForPretraining

    def only_imports(record: dict) -> str | None:  # an import replaces an import, never a model trained here
        made_by = record.get("made_by")
        return (
            None
            if made_by == IMPORTED
            else f"holds a checkpoint made by `celllm {made_by}`, which an import would replace; import into another folder"
        )

    out = check_output_folder(out, KIND, [checkpoint, genes, hgnc], replaces=only_imports)
    state, how = read_released(checkpoint)
    sizes = released_sizes(state, str(checkpoint))
    names, mapping = map_symbols(read_gene_order(genes, sizes["n_genes"]), hgnc)
    cfg = released_config(sizes, max_len)
    torch.manual_seed(seed)  # the heads the released model lacks (contrastive projection, tissue)
    model = CellLMForPretraining(sizes["n_genes"], cfg)
    model.load_state_dict(released_weights(state, model))
    report = {
        "source": str(Path(checkpoint).resolve()),
        "source_sha256": file_sha256(checkpoint),
        "read": how,
        "sizes": sizes,
        "released_parameters": int(sum(v.numel() for k, v in state.items() if k != REDRAW_COUNTER and not k.endswith("projection_matrix"))),
        "genes": {"file": str(genes), **mapping},
        "not_imported": [REDRAW_COUNTER],
        "initialised_here": ["projection (contrastive head)", "tissue_head", "bin embedding row 8 ([MASK], zeros)"],
    }
    save_checkpoint(out, model, Vocabulary(names), cfg, extra={REPORT: json.dumps(report, indent=2) + "\n"}, made_by=IMPORTED)
    log.info(
        "%s: %d genes (%s), %d released parameters, dim %d, depth %d",
        out,
        sizes["n_genes"],
        f"{mapping['renamed']} renamed to approved symbols, {mapping['unknown']} unknown"
        if mapping["mapped"]
        else "names as given (no --hgnc)",
        report["released_parameters"],
        sizes["dim"],
        sizes["depth"],
    )
    return report
