"""Seeded simulator of every dataset the CellLM tasks need, sharing one biology.

The demo run must work offline on a small CPU, so instead of downloading PanglaoDB,
PBMC, drug-sensitivity and GDSC data we simulate look-alikes. All of them are drawn
from one :class:`GeneProgramWorld`, so structure learnt while pretraining on the
simulated corpus (which genes move together, which cell states exist) is the same
structure the downstream tasks depend on. Everything is clearly marked as simulated:
dataset names start with ``sim_`` and ``adata.uns["simulated"] is True``.

Generative model (shared by all datasets)
-----------------------------------------
* Genes. About 60% of the genes belong to one of ``n_programs`` gene programs
  (co-regulated modules); the rest are background genes. Program 0 is
  *proliferation*, 1 is *stress* and 2 is *drug response* (apoptotic priming);
  the remaining programs carry cell identity.
* Cells. A cell is a vector ``a`` of program activities. Its expected expression
  share of gene ``g`` is ``softmax_g(base_log_mean[g] + a @ loadings[:, g] + offset[g])``,
  where ``offset`` is an optional per-sample gene shift (copy-number changes in tumours).
* Counts. The share times a log-normal library size gives the mean ``mu``; counts are
  negative binomial, drawn as a gamma-Poisson mixture with per-gene inverse dispersion
  ``theta``. Bulk samples are sums of many cells, i.e. NB with ``theta`` multiplied by
  the number of pooled cells, at a much larger depth.
* Cell types are fixed activity prototypes (mostly two identity programs switched on),
  generated in order from the world seed, so ``type_03`` means the same biology in the
  pretraining corpus and in the cell-type dataset.
* Drugs act through the programs: a drug's weight on each program is a seeded random
  projection of a hashed SMILES n-gram fingerprint, so similar structures give similar
  response profiles across cell lines.

Randomness: every method draws from ``np.random.default_rng([world_seed, stream, seed])``,
so a dataset is a pure function of (genes, world seed, dataset seed) and datasets of
different kinds never share random streams.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

PROLIFERATION = 0
STRESS = 1
DRUG_RESPONSE = 2
N_RESERVED_PROGRAMS = 3

PROGRAM_GENE_FRACTION = 0.6
# Mean UMIs per cell, as in 10x PBMC data. As in real cells, a few housekeeping genes
# (think ribosomal and mitochondrial) take most of them; the remaining ~100 counts spread
# over the other genes, which gives ~90% zeros and ~75 detected genes per cell with the
# demo's 765 genes. The realistic total matters for the released binning: after scaling to
# 1e4 and log2, a single count lands in bin 2-3 rather than saturating at 5.
DEFAULT_LIBRARY_SIZE = 1500.0
N_HOUSEKEEPING = 12
HOUSEKEEPING_SHARE = 0.95  # expected share of a cell's counts on housekeeping genes
LIBRARY_LOG_SD = 0.35
BULK_LIBRARY_SIZE = 2_000_000.0
BULK_POOLED_CELLS = 100
CORPUS_N_TYPES = 16
# Spread of apoptotic priming across cells, and the part of drug sensitivity that
# expression cannot see (so the sensitive/resistant label is learnable, not trivial).
PRIMING_MEAN = 1.0
PRIMING_SD = 1.0
SENSITIVITY_NOISE_SD = 0.3
CORPUS_SAMPLES_PER_TISSUE = 4
STRUCTURE_FEATURES = 512

# Random-stream tags: one per kind of draw, so kinds never share random numbers.
_STREAM_WORLD = 1
_STREAM_TYPES = 2
_STREAM_CORPUS = 3
_STREAM_PBMC = 4
_STREAM_DRUG_SENSITIVITY = 5
_STREAM_CELL_LINES = 6
_STREAM_DRUG_PROJECTION = 7
_STREAM_PPI = 8
_STREAM_OMICS = 9

DRUG_TABLE_PATH = Path(__file__).with_name("drugs.tsv")


def load_drug_table() -> pd.DataFrame:
    """Read the shipped table of real anticancer drugs (columns drug, smiles, formula)."""
    table = pd.read_csv(DRUG_TABLE_PATH, sep="\t", dtype=str)
    if not {"drug", "smiles"} <= set(table.columns):
        raise ValueError(f"{DRUG_TABLE_PATH}: needs columns 'drug' and 'smiles'")
    return table


# Common small drugs (aspirin, caffeine, ibuprofen, paracetamol, nicotine, diazepam):
# their mean fingerprint is the "generic drug-like SMILES" direction removed below.
REFERENCE_SMILES = (
    "CC(=O)OC1=CC=CC=C1C(=O)O",
    "CN1C=NC2=C1C(=O)N(C(=O)N2C)C",
    "CC(C)CC1=CC=C(C=C1)C(C)C(=O)O",
    "CC(=O)NC1=CC=C(C=C1)O",
    "CN1CCCC1C2=CN=CC=C2",
    "CN1C(=O)CN=C(C2=C1C=CC(=C2)Cl)C3=CC=CC=C3",
)


def smiles_structure_vector(smiles: str, n_features: int = STRUCTURE_FEATURES) -> np.ndarray:
    """Unit-norm hashed fingerprint of the character 2- to 4-grams of a SMILES string.

    A stand-in for a chemical fingerprint that needs no RDKit: SMILES strings that share
    substrings (shared substructures) get similar vectors. The direction shared by all
    drug-like SMILES (ring closures, "C(", "=C", ...) is projected out, so what is left
    says how a drug differs from a typical one; otherwise every drug would look alike.
    Hashing uses BLAKE2b, not Python's salted ``hash``, so the vector is identical in
    every process.
    """
    fingerprint = _ngram_fingerprint(smiles, n_features)
    generic = _generic_direction(n_features)
    distinctive = fingerprint - (fingerprint @ generic) * generic
    return distinctive / np.linalg.norm(distinctive)


def _ngram_fingerprint(smiles: str, n_features: int) -> np.ndarray:
    if not isinstance(smiles, str) or not smiles.strip():
        raise ValueError(f"SMILES must be a non-empty string, got {smiles!r}")
    if n_features < 2:
        raise ValueError(f"n_features must be >= 2, got {n_features}")
    vector = np.zeros(n_features)
    for n in (2, 3, 4):
        for start in range(max(len(smiles) - n + 1, 1)):
            digest = hashlib.blake2b(smiles[start : start + n].encode(), digest_size=8).digest()
            code = int.from_bytes(digest, "little")
            # Low bit picks a sign so unrelated n-grams colliding in one bucket cancel on average.
            vector[(code >> 1) % n_features] += 1.0 if code & 1 else -1.0
    vector = np.sign(vector) * np.log1p(np.abs(vector))  # damp very frequent n-grams
    norm = np.linalg.norm(vector)
    return vector / norm if norm > 0 else vector


@functools.lru_cache(maxsize=8)
def _generic_direction(n_features: int) -> np.ndarray:
    mean = np.mean([_ngram_fingerprint(s, n_features) for s in REFERENCE_SMILES], axis=0)
    direction = mean / np.linalg.norm(mean)
    direction.setflags(write=False)  # cached: shared by every caller
    return direction


class GeneProgramWorld:
    """Gene programs shared by all simulated datasets.

    Generative model: a cell is a vector of program activities ``a`` (one per program);
    gene ``g`` gets expression share ``softmax(base_log_mean + a @ loadings)[g]``;
    counts are negative binomial (gamma-Poisson) around share x library size, with a
    log-normal library size per cell and per-gene overdispersion. Programs 0, 1 and 2
    are proliferation, stress and drug response; the others define cell identity.
    Tumour cells raise proliferation and stress and carry per-sample program shifts and
    copy-number-like gene shifts. See the module docstring for the full story.

    Attributes
    ----------
    genes : list of gene names (unique), the ``var_names`` of every dataset.
    n_programs : number of gene programs.
    program_of_gene : int array (n_genes,), the program of each gene, -1 for background.
    base_log_mean : float array (n_genes,), log expression share before programs act.
    loadings : float array (n_programs, n_genes), how strongly each program drives each
        gene (non-zero only for the program's member genes).
    inverse_dispersion : float array (n_genes,), NB ``theta`` per gene (variance
        ``mu + mu**2 / theta``).
    housekeeping : int array, the few background genes that take most of each cell's counts.
    """

    def __init__(self, genes: list[str], n_programs: int = 12, seed: int = 0):
        genes = [str(g) for g in genes]
        if not genes:
            raise ValueError("genes must be a non-empty list of gene names")
        if len(set(genes)) != len(genes):
            raise ValueError("genes must be unique")
        if not _is_integer(n_programs) or n_programs < N_RESERVED_PROGRAMS + 1:
            raise ValueError(
                f"n_programs must be >= {N_RESERVED_PROGRAMS + 1} (proliferation, stress, "
                f"drug response and at least one identity program), got {n_programs}"
            )
        genes_per_program = int(PROGRAM_GENE_FRACTION * len(genes)) // n_programs
        if genes_per_program < 2:
            raise ValueError(
                f"{len(genes)} genes are too few for {n_programs} programs; "
                f"need at least {int(np.ceil(2 * n_programs / PROGRAM_GENE_FRACTION))}"
            )
        _check_seed(seed)
        self.genes = genes
        self.n_programs = int(n_programs)
        self.seed = int(seed)
        rng = np.random.default_rng([self.seed, _STREAM_WORLD])
        n_genes = len(genes)

        self.program_of_gene = np.full(n_genes, -1, dtype=np.int64)
        members = rng.permutation(n_genes)[: genes_per_program * n_programs]
        self.program_of_gene[members] = np.repeat(np.arange(n_programs), genes_per_program)

        in_program = self.program_of_gene >= 0
        # Skewed gene means as in UMI data: many rare genes, no single gene dominating.
        # Program genes start lower: like marker genes they are mostly seen where active.
        self.base_log_mean = -rng.exponential(1.5, n_genes) - 1.0 * in_program
        self.loadings = np.zeros((n_programs, n_genes))
        self.loadings[self.program_of_gene[in_program], np.flatnonzero(in_program)] = rng.uniform(0.8, 1.8, in_program.sum())
        self.inverse_dispersion = np.exp(rng.normal(np.log(2.0), 0.5, n_genes))
        # Housekeeping genes: background genes that carry HOUSEKEEPING_SHARE of the counts.
        background = np.flatnonzero(~in_program)
        self.housekeeping = np.sort(rng.choice(background, size=min(N_HOUSEKEEPING, len(background) // 4), replace=False))
        if len(self.housekeeping):
            others = np.setdiff1d(np.arange(n_genes), self.housekeeping)
            rest = np.exp(self.base_log_mean[others]).sum()
            target = np.log(HOUSEKEEPING_SHARE / (1 - HOUSEKEEPING_SHARE) * rest / len(self.housekeeping))
            self.base_log_mean[self.housekeeping] = target + rng.normal(0.0, 0.5, len(self.housekeeping))
        # Fixed projection from SMILES fingerprints to (potency, program weights).
        self._drug_projection = np.random.default_rng([self.seed, _STREAM_DRUG_PROJECTION]).normal(
            0.0, 1.0, (n_programs + 1, STRUCTURE_FEATURES)
        )
        self._prototype_cache = np.zeros((0, n_programs))

    # ------------------------------------------------------------------ counts
    def expression_share(self, activity: np.ndarray, gene_log_offset: np.ndarray | None = None) -> np.ndarray:
        """Expected fraction of a cell's counts falling on each gene, shape (n_cells, n_genes)."""
        logits = self.base_log_mean + np.asarray(activity, dtype=float) @ self.loadings
        if gene_log_offset is not None:
            logits = logits + gene_log_offset
        logits -= logits.max(axis=1, keepdims=True)
        share = np.exp(logits)
        return share / share.sum(axis=1, keepdims=True)

    def sample_counts(
        self,
        activity: np.ndarray,
        rng: np.random.Generator,
        library_size_mean: float = DEFAULT_LIBRARY_SIZE,
        *,
        gene_log_offset: np.ndarray | None = None,
    ) -> sp.csr_matrix:
        """Draw single-cell UMI counts for cells with the given program activities.

        activity: (n_cells, n_programs). Library sizes are log-normal with mean
        ``library_size_mean``; counts are NB (gamma-Poisson) with per-gene theta.
        gene_log_offset: optional (n_genes,) or (n_cells, n_genes) log-scale gene shift.
        Returns float32 CSR of integer counts.
        """
        activity = self._check_activity(activity)
        if library_size_mean <= 0:
            raise ValueError(f"library_size_mean must be > 0, got {library_size_mean}")
        n_cells = activity.shape[0]
        # Log-normal with the requested mean: E[exp(N(m, s))] = exp(m + s^2 / 2).
        library = np.exp(rng.normal(np.log(library_size_mean) - LIBRARY_LOG_SD**2 / 2, LIBRARY_LOG_SD, n_cells))
        mean = self.expression_share(activity, gene_log_offset) * library[:, None]
        return _negative_binomial_csr(mean, self.inverse_dispersion, rng)

    # ------------------------------------------------------------------ cell states
    def type_prototypes(self, n_types: int) -> np.ndarray:
        """Activity prototypes of cell types 0..n_types-1, shape (n_types, n_programs).

        Generated one after another from the world seed, so the first k prototypes do not
        depend on how many are asked for: ``type_03`` is the same everywhere.
        """
        if n_types < 1:
            raise ValueError(f"n_types must be >= 1, got {n_types}")
        if n_types > len(self._prototype_cache):
            self._prototype_cache = self._generate_prototypes(n_types)
        return self._prototype_cache[:n_types].copy()

    def _generate_prototypes(self, n_types: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, _STREAM_TYPES])
        identity = np.arange(N_RESERVED_PROGRAMS, self.n_programs)
        n_active = min(2, len(identity))
        used: set[tuple[int, ...]] = set()
        prototypes = np.empty((n_types, self.n_programs))
        for t in range(n_types):
            prototype = rng.normal(0.0, 0.15, self.n_programs)
            # Prefer an unused pair of identity programs so types stay distinguishable;
            # types sharing one program are "related" (like CD4 and CD8 T cells).
            for _ in range(50):
                active = tuple(sorted(rng.choice(identity, n_active, replace=False).tolist()))
                if active not in used:
                    break
            used.add(active)
            prototype[list(active)] += rng.uniform(1.0, 2.0, n_active)
            prototype[PROLIFERATION] += rng.normal(0.0, 0.3)
            prototypes[t] = prototype
        return prototypes

    def _cell_activity(self, cell_type: np.ndarray, rng: np.random.Generator, cycling_rate: float) -> np.ndarray:
        """Per-cell activities: type prototype + cell-level noise + occasional cycling."""
        prototypes = self.type_prototypes(int(cell_type.max()) + 1)
        activity = prototypes[cell_type] + rng.normal(0.0, 0.35, (len(cell_type), self.n_programs))
        activity[:, PROLIFERATION] += 1.5 * (rng.random(len(cell_type)) < cycling_rate)
        return activity

    def _tumor_shift(self, rng: np.random.Generator) -> np.ndarray:
        """Program shift of one tumour: proliferation and stress up, plus its own quirks."""
        shift = rng.normal(0.0, 0.4, self.n_programs)
        shift[PROLIFERATION] += 0.6
        shift[STRESS] += 0.8
        return shift

    def _copy_number_offset(self, rng: np.random.Generator) -> np.ndarray:
        """Log-scale gene shift of a tumour: a few gained or lost contiguous gene blocks.

        Gene order in ``genes`` stands in for genome position.
        """
        n_genes = len(self.genes)
        offset = np.zeros(n_genes)
        for _ in range(rng.integers(2, 5)):
            length = int(rng.integers(max(1, n_genes // 40), max(2, n_genes // 10)))
            start = int(rng.integers(0, max(1, n_genes - length)))
            offset[start : start + length] += rng.choice([np.log(0.5), np.log(1.5), np.log(2.0)])
        return offset

    # ------------------------------------------------------------------ datasets
    def pretraining_corpus(self, n_cells: int, seed: int, tumor_fraction: float = 0.5) -> ad.AnnData:
        """Mixed tumour/normal atlas for pretraining (stand-in for PanglaoDB/TISCH).

        Cells come from ``CORPUS_SAMPLES_PER_TISSUE`` samples per tissue, each with its
        own cell-type mix, library depth and program shift (batch effect). Tumour samples
        add a tumour shift (proliferation, stress up) and copy-number gene shifts, and
        cycle more often. obs: tissue, cell_type, sample.
        """
        _check_count("n_cells", n_cells, 1)
        _check_seed(seed)
        if not 0.0 <= tumor_fraction <= 1.0:
            raise ValueError(f"tumor_fraction must be in [0, 1], got {tumor_fraction}")
        rng = np.random.default_rng([self.seed, _STREAM_CORPUS, seed])
        n_tumor = int(round(n_cells * tumor_fraction))
        is_tumor = rng.permutation(np.arange(n_cells) < n_tumor)
        sample_index = rng.integers(0, CORPUS_SAMPLES_PER_TISSUE, n_cells)
        sample = np.array([f"sim_{'tumor' if t else 'normal'}_S{s:02d}" for t, s in zip(is_tumor, sample_index)], dtype=object)

        base_mix = _unbalanced_proportions(CORPUS_N_TYPES, rng)
        cell_type = np.empty(n_cells, dtype=np.int64)
        activity_of_cell = np.empty((n_cells, self.n_programs))
        blocks, rows = [], []
        for name in sorted(set(sample)):
            idx = np.flatnonzero(sample == name)
            tumor = name.startswith("sim_tumor_")
            mix = rng.dirichlet(base_mix * 20.0)  # samples differ in composition
            cell_type[idx] = rng.choice(CORPUS_N_TYPES, len(idx), p=mix)
            activity = self._cell_activity(cell_type[idx], rng, cycling_rate=0.4 if tumor else 0.1)
            activity += rng.normal(0.0, 0.15, self.n_programs)  # batch effect
            offset = None
            if tumor:
                activity += self._tumor_shift(rng)
                offset = self._copy_number_offset(rng)
            activity_of_cell[idx] = activity
            depth = DEFAULT_LIBRARY_SIZE * np.exp(rng.normal(0.0, 0.2))
            blocks.append(self.sample_counts(activity, rng, depth, gene_log_offset=offset))
            rows.append(idx)
        counts = _stack_in_order(blocks, rows, n_cells, len(self.genes))
        obs = pd.DataFrame(
            {
                "tissue": pd.Categorical(np.where(is_tumor, "tumor", "normal"), categories=["normal", "tumor"]),
                "cell_type": _type_labels(cell_type, CORPUS_N_TYPES),
                "sample": pd.Categorical(sample),
            }
        )
        return self._anndata(counts, obs, "sim_pretrain", seed, activity_of_cell)

    def cell_types(
        self, n_cells: int, n_types: int, seed: int, n_donors: int = 1, donor_effect: float = 0.3, balanced: bool = False
    ) -> ad.AnnData:
        """Annotated cell-type dataset (stand-in for PBMC), unbalanced class sizes.

        Type proportions decay geometrically (largest ~30%, smallest ~1-2% for ten
        types), like T cells versus dendritic cells in blood; `balanced`: every type
        equally likely (a validation set whose rare types are not a handful of cells).
        Types from CORPUS_N_TYPES on never occur in `pretraining_corpus`. obs: cell_type. With
        `n_donors` > 1 (stand-in for Baron's four donors), each cell comes from a donor
        whose batch effect shifts its program activities and, per gene, its capture
        (both normal with sd `donor_effect` on the log scale); obs gets `donor`.
        """
        if n_types < 2:
            raise ValueError(f"n_types must be >= 2 for a classification task, got {n_types}")
        _check_count("n_cells", n_cells, n_types)
        _check_seed(seed)
        rng = np.random.default_rng([self.seed, _STREAM_PBMC, seed])
        # One cell per type guaranteed, the rest drawn from the unbalanced mix.
        mix = np.full(n_types, 1.0 / n_types) if balanced else _unbalanced_proportions(n_types)
        cell_type = np.concatenate([np.arange(n_types), rng.choice(n_types, n_cells - n_types, p=mix)])
        cell_type = rng.permutation(cell_type)
        activity = self._cell_activity(cell_type, rng, cycling_rate=0.05)
        obs = pd.DataFrame({"cell_type": _type_labels(cell_type, n_types)})
        if n_donors < 2:  # (drawing nothing more keeps the single-donor data as they were)
            return self._anndata(self.sample_counts(activity, rng), obs, "sim_pbmc", seed, activity)
        donor = rng.integers(0, n_donors, n_cells)
        activity = activity + rng.normal(0.0, donor_effect, (n_donors, self.n_programs))[donor]
        capture = rng.normal(0.0, donor_effect, (n_donors, len(self.genes)))[donor]
        obs["donor"] = pd.Categorical([f"donor{d + 1}" for d in donor])
        counts = self.sample_counts(activity, rng, gene_log_offset=capture)
        return self._anndata(counts, obs, "sim_pbmc_donors", seed, activity)

    def drug_sensitivity(self, n_cells: int, seed: int, sensitive_fraction: float = 0.5) -> ad.AnnData:
        """Single tumour cells labelled sensitive/resistant to one drug.

        Each cell's latent sensitivity is its drug-response program activity plus a
        smaller proliferation term plus noise the expression cannot see; the top
        ``sensitive_fraction`` are "sensitive". Cells come from three tumour cell states
        so cell identity is a nuisance, not the answer. obs: response, cell_type.
        """
        _check_count("n_cells", n_cells, 2)
        _check_seed(seed)
        if not 0.0 < sensitive_fraction < 1.0:
            raise ValueError(f"sensitive_fraction must be in (0, 1), got {sensitive_fraction}")
        rng = np.random.default_rng([self.seed, _STREAM_DRUG_SENSITIVITY, seed])
        lineages = rng.choice(CORPUS_N_TYPES, 3, replace=False)
        cell_type = lineages[rng.integers(0, 3, n_cells)]
        activity = self._cell_activity(cell_type, rng, cycling_rate=0.4) + self._tumor_shift(rng)
        # Cells differ widely in apoptotic priming: the biology behind the label.
        activity[:, DRUG_RESPONSE] += rng.normal(PRIMING_MEAN, PRIMING_SD, n_cells)
        sensitivity = activity[:, DRUG_RESPONSE] + 0.4 * activity[:, PROLIFERATION] + rng.normal(0.0, SENSITIVITY_NOISE_SD, n_cells)
        n_sensitive = min(max(int(round(n_cells * sensitive_fraction)), 1), n_cells - 1)
        sensitive = np.zeros(n_cells, dtype=bool)
        sensitive[np.argsort(-sensitivity)[:n_sensitive]] = True
        counts = self.sample_counts(activity, rng, gene_log_offset=self._copy_number_offset(rng))
        obs = pd.DataFrame(
            {
                "response": pd.Categorical(np.where(sensitive, "sensitive", "resistant"), categories=["resistant", "sensitive"]),
                "cell_type": _type_labels(cell_type, CORPUS_N_TYPES).remove_unused_categories(),
            }
        )
        return self._anndata(counts, obs, "sim_drug_sensitivity", seed, activity)

    def drug_program_weights(self, smiles: str) -> tuple[float, np.ndarray]:
        """(potency, per-program weights) of a drug, a deterministic function of its SMILES.

        Both come from one seeded random projection of the SMILES fingerprint, so similar
        structures get similar potency and a similar pattern over programs. Every drug
        also leans on the drug-response program (primed cells die more easily).
        """
        projected = self._drug_projection @ smiles_structure_vector(smiles)
        potency = 2.0 + 3.5 * np.tanh(0.8 * projected[-1])  # mean ln IC50 in (-1.5, 5.5)
        weights = 0.35 * projected[:-1]
        weights[DRUG_RESPONSE] += 0.8
        return float(potency), weights

    def cell_lines(self, n_cell_lines: int, drugs: pd.DataFrame, seed: int) -> tuple[ad.AnnData, pd.DataFrame]:
        """Bulk cancer cell lines and their ln IC50 for every drug (stand-in for GDSC).

        A line's activity is a lineage prototype + tumour shift + strong line-specific
        shifts; its expression is bulk NB counts (many pooled cells at high depth).
        ``ln_ic50 = potency(drug) - (activity - expected line) @ weights(drug) + noise``,
        with potency and weights derived from the drug's SMILES. Returns (adata, pairs)
        with pairs columns cell_line, drug, smiles, ln_ic50, one row per (line, drug).
        """
        _check_count("n_cell_lines", n_cell_lines, 1)
        _check_seed(seed)
        drugs = _check_drugs(drugs)
        rng = np.random.default_rng([self.seed, _STREAM_CELL_LINES, seed])
        lineage = rng.integers(0, CORPUS_N_TYPES, n_cell_lines)
        prototypes = self.type_prototypes(CORPUS_N_TYPES)
        tumor_mean = np.zeros(self.n_programs)
        tumor_mean[[PROLIFERATION, STRESS]] = 0.6, 0.8
        activity = prototypes[lineage] + tumor_mean + rng.normal(0.0, 0.5, (n_cell_lines, self.n_programs))
        activity[:, DRUG_RESPONSE] += rng.normal(0.0, 0.6, n_cell_lines)  # priming varies most

        offsets = np.stack([self._copy_number_offset(rng) for _ in range(n_cell_lines)])
        library = BULK_LIBRARY_SIZE * np.exp(rng.normal(0.0, 0.2, n_cell_lines))
        mean = self.expression_share(activity, offsets) * library[:, None]
        counts = _negative_binomial_csr(mean, self.inverse_dispersion * BULK_POOLED_CELLS, rng)

        names = [f"SIMCL-{i:03d}" for i in range(n_cell_lines)]
        # Weights act on deviations from the expected cell line (not the drawn lines' mean,
        # so a line's response does not depend on which other lines were drawn).
        deviation = activity - (prototypes.mean(axis=0) + tumor_mean)
        profiles = [self.drug_program_weights(s) for s in drugs["smiles"]]
        potency = np.array([p for p, _ in profiles])
        weights = np.stack([w for _, w in profiles], axis=1)  # (n_programs, n_drugs)
        ln_ic50 = potency[None, :] - deviation @ weights + rng.normal(0.0, 0.5, (n_cell_lines, len(drugs)))
        pairs = pd.DataFrame(
            {
                "cell_line": np.repeat(names, len(drugs)),
                "drug": np.tile(drugs["drug"].to_numpy(), n_cell_lines),
                "smiles": np.tile(drugs["smiles"].to_numpy(), n_cell_lines),
                "ln_ic50": ln_ic50.ravel().astype(float),
            }
        )
        obs = pd.DataFrame(
            {
                "cell_line": names,
                "tissue": pd.Categorical(["tumor"] * n_cell_lines, categories=["normal", "tumor"]),
                "lineage": _type_labels(lineage, CORPUS_N_TYPES),
            }
        )
        adata = self._anndata(counts, obs, "sim_cell_lines", seed, activity, obs_names=names)
        adata.obsm["mutation"], adata.obsm["copy_number"] = self._cell_line_omics(lineage, offsets, names, seed)
        return adata, pairs

    def _cell_line_omics(self, lineage: np.ndarray, offsets: np.ndarray, names: list[str], seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Simulated mutation and copy-number profiles (stand-ins for DepMap's) over a census of one
        gene in six: copy number is the line's simulated gene-dose shift on DepMap's scale,
        log2(relative copy number + 1), plus noise; damaging mutations (0/1) come at 3% per gene, and
        at 50% for three driver genes of each lineage. Mutations do not act on expression or
        response: they say only what lineage already says. Drawn from their own stream, so adding
        them changed no other simulated number."""
        rng = np.random.default_rng([self.seed, _STREAM_OMICS, seed])
        n_genes = len(self.genes)
        census = np.sort(rng.choice(n_genes, size=max(8, n_genes // 6), replace=False))
        drivers = np.stack([rng.choice(len(census), 3, replace=False) for _ in range(CORPUS_N_TYPES)])
        rate = np.full((len(names), len(census)), 0.03)
        rate[np.arange(len(names))[:, None], drivers[lineage]] = 0.5
        mutation = (rng.random(rate.shape) < rate).astype(np.float32)
        copy_number = np.log2(np.exp(offsets[:, census]) + 1.0) + rng.normal(0.0, 0.05, (len(names), len(census)))
        genes = [self.genes[i] for i in census]
        index = pd.Index(names, dtype=object)
        return (
            pd.DataFrame(mutation, index=index, columns=genes),
            pd.DataFrame(copy_number.astype(np.float32), index=index, columns=genes),
        )

    def ppi_graph(self, seed: int) -> pd.DataFrame:
        """Protein-protein interaction edges (stand-in for STRING), one row per undirected edge.

        Genes of one program form dense communities with confident scores; a sparse set
        of weaker edges links genes of different programs or background genes, and at
        least 30% of background genes (about half in practice) have no edge at all. Columns gene_a, gene_b, score
        (int, 150..1000 like STRING combined_score); gene_a precedes gene_b in ``genes``.
        """
        _check_seed(seed)
        rng = np.random.default_rng([self.seed, _STREAM_PPI, seed])
        n_genes = len(self.genes)
        edges_a, edges_b, scores = [], [], []
        for program in range(self.n_programs):
            members = np.flatnonzero(self.program_of_gene == program)
            first, second = np.triu_indices(len(members), k=1)
            # Cap the expected within-program degree near 12 so big gene sets stay sparse.
            keep = rng.random(len(first)) < min(0.3, 12.0 / max(len(members) - 1, 1))
            edges_a.append(members[first[keep]])
            edges_b.append(members[second[keep]])
            scores.append(400 + np.round(600 * rng.beta(2.0, 1.5, keep.sum())))

        background = np.flatnonzero(self.program_of_gene < 0)
        isolated = rng.random(len(background)) < 0.3
        connectable = np.setdiff1d(np.arange(n_genes), background[isolated])
        n_between = rng.poisson(0.5 * len(connectable))  # mean ~1 cross edge per gene
        a = rng.choice(connectable, n_between)
        b = rng.choice(connectable, n_between)
        same_program = (self.program_of_gene[a] == self.program_of_gene[b]) & (self.program_of_gene[a] >= 0)
        keep = (a != b) & ~same_program
        edges_a.append(a[keep])
        edges_b.append(b[keep])
        scores.append(150 + np.round(450 * rng.beta(1.5, 3.0, keep.sum())))

        a, b = np.concatenate(edges_a), np.concatenate(edges_b)
        low, high = np.minimum(a, b), np.maximum(a, b)
        _, first_seen = np.unique(low * n_genes + high, return_index=True)  # drop duplicates
        genes = np.asarray(self.genes, dtype=object)
        return pd.DataFrame(
            {
                "gene_a": genes[low[first_seen]],
                "gene_b": genes[high[first_seen]],
                "score": np.concatenate(scores)[first_seen].astype(np.int64),
            }
        )

    # ------------------------------------------------------------------ helpers
    def _check_activity(self, activity: np.ndarray) -> np.ndarray:
        activity = np.asarray(activity, dtype=float)
        if activity.ndim != 2 or activity.shape[1] != self.n_programs:
            raise ValueError(f"activity must have shape (n_cells, {self.n_programs}), got {activity.shape}")
        return activity

    def _anndata(
        self,
        counts: sp.csr_matrix,
        obs: pd.DataFrame,
        dataset: str,
        seed: int,
        activity: np.ndarray,
        obs_names: list[str] | None = None,
    ) -> ad.AnnData:
        """Wrap counts with the metadata every simulated dataset carries.

        The true program activities go to ``obsm["sim_program_activity"]`` and each
        gene's program to ``var["sim_program"]``: ground truth for analyses, never inputs.
        """
        obs.index = pd.Index(obs_names or [f"{dataset}-{i:06d}" for i in range(counts.shape[0])], dtype=object)
        var = pd.DataFrame({"sim_program": self.program_of_gene}, index=pd.Index(self.genes, dtype=object))
        adata = ad.AnnData(X=counts, obs=obs, var=var)
        adata.obsm["sim_program_activity"] = np.asarray(activity, dtype=np.float32)
        adata.uns.update(
            {
                "simulated": True,
                "dataset": dataset,
                "count_scale": "raw_counts",
                "seed": int(seed),
                "world_seed": self.seed,
                "n_programs": self.n_programs,
            }
        )
        return adata


# ---------------------------------------------------------------------- module helpers
def _negative_binomial_csr(mean: np.ndarray, inverse_dispersion: np.ndarray, rng: np.random.Generator) -> sp.csr_matrix:
    """NB counts as a gamma-Poisson mixture: rate ~ Gamma(theta, mean/theta), count ~ Poisson(rate)."""
    rate = rng.gamma(inverse_dispersion, mean / inverse_dispersion)
    return sp.csr_matrix(rng.poisson(rate).astype(np.float32))


def _stack_in_order(blocks: list[sp.csr_matrix], rows: list[np.ndarray], n_cells: int, n_genes: int) -> sp.csr_matrix:
    """Stack per-sample blocks and put each row back at its cell's position."""
    if not blocks:
        return sp.csr_matrix((n_cells, n_genes), dtype=np.float32)
    stacked = sp.vstack(blocks, format="csr")
    order = np.empty(n_cells, dtype=np.int64)
    order[np.concatenate(rows)] = np.arange(n_cells)
    return stacked[order].astype(np.float32)


def _unbalanced_proportions(n_types: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Geometrically decaying class proportions (ratio 0.7), optionally shuffled."""
    proportions = 0.7 ** np.arange(n_types)
    if rng is not None:
        proportions = rng.permutation(proportions)
    return proportions / proportions.sum()


def _type_labels(cell_type: np.ndarray, n_types: int) -> pd.Categorical:
    names = [f"type_{t:02d}" for t in range(n_types)]
    return pd.Categorical(np.asarray(names, dtype=object)[cell_type], categories=names)


def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_seed(seed: int) -> None:
    if not _is_integer(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _check_count(name: str, value: int, minimum: int) -> None:
    if not _is_integer(value) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_drugs(drugs: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(drugs, pd.DataFrame) or not {"drug", "smiles"} <= set(drugs.columns):
        raise ValueError("drugs must be a DataFrame with columns 'drug' and 'smiles'")
    if drugs.empty:
        raise ValueError("drugs table is empty")
    if drugs["drug"].duplicated().any():
        duplicated = sorted(drugs.loc[drugs["drug"].duplicated(), "drug"].astype(str).unique())
        raise ValueError(f"drug names must be unique, duplicated: {duplicated}")
    return drugs.reset_index(drop=True)
