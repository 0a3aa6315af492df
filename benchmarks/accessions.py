"""Is an evaluation dataset's sample in the pretraining corpus? Public accessions, compared.

The other half of the contamination check (benchmarks/contamination.py counts exact duplicate
cells): each evaluation dataset's accessions, read from public sources and kept with their
source in benchmarks/accessions.tsv, against the accessions of the corpus's samples. PanglaoDB
names every sample by its SRA submission and SRS sample accessions (`SRA553822_SRS2119548`,
the name of its file and of `.obs['sample']` after ingest; `ingest.sources.panglaodb`), and
publishes the same pairs in its sample list (`metadata.txt`), so those two kinds are what can be
matched. A dataset known only by kinds the corpus does not list (a GEO series, an SRA study) is
reported as not comparable, never as clean; a simulated dataset or corpus has no accessions.
CancerSCEM's sample ids are its own, not archive accessions: its samples are not checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from celllm.errors import InputError
from celllm.io import read_annotated_tsv

ACCESSIONS = Path(__file__).with_name("accessions.tsv")
TABLE_COLUMNS = ("dataset", "kind", "accession", "source")
KINDS = {
    "sra_submission": r"[SED]RA\d+",
    "sra_study": r"[SED]RP\d+",
    "sra_sample": r"[SED]RS\d+",
    "sra_experiment": r"[SED]RX\d+",
    "sra_run": r"[SED]RR\d+",
    "geo_series": r"GSE\d+",
    "geo_sample": r"GSM\d+",
    "bioproject": r"PRJ[A-Z]{1,2}\d+",
    "biosample": r"SAM[NED][A-Z]?\d+",
}
COLUMNS = ("dataset", "accessions", "comparable", "n_in_corpus", "in_corpus", "status")
SIMULATED_STATUS = "no accessions (simulated)"


def accession_kind(accession: str) -> str:
    """The kind of an archive accession (a key of KINDS), from its prefix; ValueError for anything else."""
    for kind, pattern in KINDS.items():
        if re.fullmatch(pattern, accession):
            return kind
    raise ValueError(f"{accession!r} is not an SRA, GEO, BioProject or BioSample accession")


def read_evaluation_accessions(path=ACCESSIONS) -> pd.DataFrame:
    """benchmarks/accessions.tsv: one row per (dataset, accession), its kind checked against the accession's prefix."""
    table = read_annotated_tsv(path, "accession table")
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    for row in table.itertuples():
        try:
            kind = accession_kind(row.accession)
        except ValueError as exc:
            raise InputError(f"{path}: dataset {row.dataset}: {exc}") from None
        if kind != row.kind:
            raise InputError(f"{path}: dataset {row.dataset}: {row.accession} is a {kind} accession, the table says {row.kind}")
        if not row.source.strip():
            raise InputError(f"{path}: dataset {row.dataset}: {row.accession} has no source")
    twice = table.duplicated(["dataset", "accession"])
    if twice.any():
        raise InputError(f"{path}: dataset {table.loc[twice, 'dataset'].iloc[0]} lists {table.loc[twice, 'accession'].iloc[0]} twice")
    return table[list(TABLE_COLUMNS)]


@dataclass(frozen=True)
class CorpusAccessions:
    """The accessions of the pretraining corpus's samples, and what they were read from (one line per corpus dataset)."""

    accessions: frozenset[str]
    described: tuple[str, ...] = ()

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(accession_kind(a) for a in self.accessions)

    @classmethod
    def from_sample_names(cls, names: Iterable[str], what: str) -> CorpusAccessions:
        """PanglaoDB sample names (`SRA..._SRS...`, the ingest's `.obs['sample']` or the files' names)."""
        from ingest.sources.panglaodb import sample_accessions

        names = sorted(set(names))
        found = {a for name in names for a in sample_accessions(name)}
        unnamed = sum(not sample_accessions(name) for name in names)
        note = f"{what}: {len(names):,} samples, {len(found):,} SRA accessions" + (
            f" ({unnamed:,} sample names without one)" if unnamed else ""
        )
        return cls(frozenset(found), (note,))

    @classmethod
    def from_panglaodb_list(cls, path, species: str | None = "Homo sapiens") -> CorpusAccessions:
        """PanglaoDB's published sample list (`metadata.txt`), the samples of one species (None: all)."""
        from ingest.sources.panglaodb import read_panglaodb_sample_list

        table = read_panglaodb_sample_list(path)
        kept = table if species is None else table[table["species"] == species]
        found = set(kept["sra"]) | set(kept["srs"][kept["srs"] != ""])
        note = f"{Path(path).name}: {len(kept):,} of {len(table):,} listed samples" + (f" ({species})" if species else "")
        return cls(frozenset(found), (note,))

    @classmethod
    def without_accessions(cls, what: str, why: str) -> CorpusAccessions:
        return cls(frozenset(), (f"{what}: {why}",))

    def __or__(self, other: CorpusAccessions) -> CorpusAccessions:
        return CorpusAccessions(self.accessions | other.accessions, self.described + other.described)


def overlap_row(dataset: str, evaluation: pd.DataFrame, corpus: CorpusAccessions, simulated: bool = False) -> dict:
    """One dataset's row: its accessions, those of a kind the corpus lists, those in the corpus, and a status."""
    mine = evaluation[evaluation["dataset"] == dataset]
    accessions = list(mine["accession"])
    comparable = [a for a, kind in zip(mine["accession"], mine["kind"]) if kind in corpus.kinds]
    found = [a for a in comparable if a in corpus.accessions]
    if simulated:
        status = SIMULATED_STATUS
    elif not accessions:
        status = "no accessions recorded (benchmarks/accessions.tsv)"
    elif not corpus.accessions:
        status = "not comparable: the corpus has no accessions"
    elif not comparable:
        known = ", ".join(sorted(set(mine["kind"])))
        status = f"not comparable: only {known} known; the corpus lists {', '.join(sorted(corpus.kinds))}"
    elif found:
        status = f"in the corpus: {len(found)} of {len(comparable)} comparable accessions"
    else:
        status = f"none of {len(comparable)} comparable accessions in the corpus"
    return {
        "dataset": dataset,
        "accessions": " ".join(accessions),
        "comparable": len(comparable),
        "n_in_corpus": len(found),
        "in_corpus": " ".join(found),
        "status": status,
    }


def accession_overlap(
    datasets: Sequence[str], corpus: CorpusAccessions, evaluation: pd.DataFrame | None = None, simulated: Iterable[str] = ()
) -> pd.DataFrame:
    """The overlap table of `datasets` (names as in config/datasets and results/data) with the corpus, zero included."""
    evaluation = read_evaluation_accessions() if evaluation is None else evaluation
    simulated = set(simulated)
    return pd.DataFrame([overlap_row(d, evaluation, corpus, d in simulated) for d in datasets], columns=list(COLUMNS))


def corpus_accessions(corpus_paths: Sequence) -> CorpusAccessions:
    """The accessions of the corpus datasets' samples (results/data/{name}.h5ad): PanglaoDB's from
    `.obs['sample']`; a simulated corpus has none; any other source's sample ids are not accessions."""
    from celllm.io import DatasetBlocks
    from ingest.demo import SIMULATED

    corpus = CorpusAccessions(frozenset())
    for path in corpus_paths:
        name = Path(path).stem
        if name in SIMULATED.values():
            corpus = corpus | CorpusAccessions.without_accessions(name, "simulated, no accessions")
        elif name == "panglaodb_human":
            with DatasetBlocks(path, scale_check=False) as dataset:
                if "sample" not in dataset.obs.columns:
                    raise InputError(f"{path}: no .obs['sample'] (PanglaoDB's SRA_SRS sample names, ingest/sources/panglaodb.py)")
                names = pd.unique(dataset.obs["sample"].astype(str))
            corpus = corpus | CorpusAccessions.from_sample_names(names, name)
        else:
            corpus = corpus | CorpusAccessions.without_accessions(name, "sample ids are not archive accessions; not checked")
    return corpus


def to_markdown(table: pd.DataFrame, corpus: CorpusAccessions) -> str:
    lines = [
        "Evaluation datasets whose public samples are in the pretraining corpus, by accession "
        "(benchmarks/accessions.tsv against the corpus's sample accessions).",
        "",
        *[f"- corpus: {line}" for line in corpus.described],
        "",
        "| dataset | accessions | comparable | in the corpus | status |",
        "|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(f"| {row.dataset} | {row.accessions or '–'} | {row.comparable} | {row.in_corpus or '–'} | {row.status} |")
    return "\n".join(lines) + "\n"


def write_accession_overlap(dataset_paths, corpus_paths, out_csv, out_md, accessions=ACCESSIONS) -> pd.DataFrame:
    """The accession table of the evaluation .h5ad files `dataset_paths` against the corpus .h5ad files, as .csv and
    .md; `accessions`: the evaluation datasets' accession table (benchmarks/accessions.tsv)."""
    from celllm.outputs import atomic_path
    from ingest.demo import SIMULATED

    corpus = corpus_accessions(corpus_paths)
    names = [Path(p).stem for p in dataset_paths]
    evaluation = read_evaluation_accessions(accessions)
    table = accession_overlap(names, corpus, evaluation, simulated=[n for n in names if n in SIMULATED.values()])
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out_md) as tmp:
        Path(tmp).write_text(to_markdown(table, corpus))
    return table
