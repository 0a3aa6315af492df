"""Drug features for the drug-response task, computed once per dataset.

Each drug gets a molecular graph (deepchem's MolGraphConvFeaturizer, the input
of this project's GIN drug encoder), a second graph with the 77 atom features
TGSA's TGDRP reads (the input of the released drug-response recipe, see
`tgsa_atom_features`), and a 1024-bit ECFP4 fingerprint (for the linear
baseline). Drugs are kept sorted by name, so the same table always gives the
same rows.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch_geometric.data import Data

from celllm.errors import InputError
from celllm.outputs import atomic_path

FINGERPRINT_BITS = 1024


@dataclass
class DrugFeatures:
    names: list[str]  # sorted drug names; row i of every field below is drug names[i]
    graphs: list[Data]  # x: float32 (n_atoms, n_atom_features), edge_index: long (2, n_directed_bonds)
    fingerprints: np.ndarray  # float32 (n_drugs, 1024), ECFP4 bits
    tgsa_graphs: list[Data]  # x: float32 (n_atoms, 77) TGSA's atom features, edge_index: both directions of every bond

    def __len__(self) -> int:
        return len(self.names)

    def index(self, names: Iterable[str]) -> np.ndarray:
        """Row of each drug in `names`; an unknown drug is an InputError naming it."""
        names = [str(name) for name in names]
        rows = pd.Index(self.names).get_indexer(names)
        if (rows < 0).any():
            unknown = names[int(np.flatnonzero(rows < 0)[0])]
            raise InputError(
                f"unknown drug '{unknown}' (the drug features have {len(self)} drugs: {', '.join(self.names[:10])}{', ...' if len(self) > 10 else ''})"
            )
        return rows

    def save(self, path: str | os.PathLike) -> None:
        """Write plain tensors and lists (readable with weights_only=True), atomically."""
        state = {
            "names": list(self.names),
            "x": [graph.x for graph in self.graphs],
            "edge_index": [graph.edge_index for graph in self.graphs],
            "fingerprints": torch.from_numpy(np.ascontiguousarray(self.fingerprints)),
            "tgsa_x": [graph.x for graph in self.tgsa_graphs],
            "tgsa_edge_index": [graph.edge_index for graph in self.tgsa_graphs],
        }
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    @classmethod
    def load(cls, path: str | os.PathLike) -> DrugFeatures:
        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: drug feature file not found")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            names, xs, edges, fingerprints = state["names"], state["x"], state["edge_index"], state["fingerprints"]
            tgsa = [Data(x=x, edge_index=edge_index) for x, edge_index in zip(state["tgsa_x"], state["tgsa_edge_index"])]
        except KeyError as exc:
            raise InputError(f"{path}: drug feature file lacks {exc} (written by an older version: delete it to rebuild)") from None
        except Exception as exc:  # torch/pickle raise many types for a corrupt or foreign file
            raise InputError(f"{path}: not a readable drug feature file ({type(exc).__name__}: {exc})") from None
        if not (len(names) == len(xs) == len(edges) == fingerprints.shape[0] == len(tgsa)):
            raise InputError(
                f"{path}: drug feature file is inconsistent ({len(names)} names, {len(xs)} graphs, "
                f"{fingerprints.shape[0]} fingerprints, {len(tgsa)} TGSA graphs)"
            )
        graphs = [Data(x=x, edge_index=edge_index) for x, edge_index in zip(xs, edges)]
        return cls(list(names), graphs, fingerprints.numpy(), tgsa)


def featurize_drugs(table: pd.DataFrame, source: str = "drugs") -> DrugFeatures:
    """Graphs and ECFP4 fingerprints of the unique drugs of `table` (columns drug, smiles), sorted by name.

    `table` may repeat a drug (a whole response table); a drug must always have
    the same SMILES. `source` names the table in error messages.
    """
    smiles = _unique_smiles(table, source)
    molecules = [_parse(name, text, source) for name, text in smiles.items()]
    with _quiet_deepchem():
        import deepchem as dc

        graphs = dc.feat.MolGraphConvFeaturizer().featurize(molecules)
        fingerprints = dc.feat.CircularFingerprint(radius=2, size=FINGERPRINT_BITS).featurize(molecules)
    names = list(smiles.index)
    return DrugFeatures(
        names=names,
        graphs=[_to_data(graph, name, source) for name, graph in zip(names, graphs)],
        fingerprints=np.asarray(fingerprints, dtype=np.float32).reshape(len(names), FINGERPRINT_BITS),
        tgsa_graphs=[tgsa_graph(molecule) for molecule in molecules],
    )


# TGSA's atom features (its smiles2graph.py, with dgllife's feature functions; OpenBioMed's
# MolTGSAFeaturizer is the same): written here from that list because dgllife needs DGL.
TGSA_ATOM_SYMBOLS = (
    "C",
    "N",
    "O",
    "S",
    "F",
    "Si",
    "P",
    "Cl",
    "Br",
    "Mg",
    "Na",
    "Ca",
    "Fe",
    "As",
    "Al",
    "I",
    "B",
    "V",
    "K",
    "Tl",
    "Yb",
    "Sb",
    "Sn",
    "Ag",
    "Pd",
    "Co",
    "Se",
    "Ti",
    "Zn",
    "H",
    "Li",
    "Ge",
    "Cu",
    "Au",
    "Ni",
    "Cd",
    "In",
    "Mn",
    "Zr",
    "Cr",
    "Pt",
    "Hg",
    "Pb",
)
TGSA_ATOM_FEATURES = 77


def _one_hot(value, choices) -> list[float]:
    """1 at `value`'s place among `choices`; all zeros for a value not listed (dgllife's encode_unknown=False)."""
    return [float(value == choice) for choice in choices]


def tgsa_atom_features(atom) -> list[float]:
    """The 77 features TGSA gives an RDKit atom: symbol (43), degree 0-10, implicit valence 0-6, formal
    charge, radical electrons, hybridisation (SP..SP3D2), aromatic, total Hs 0-4, in ring, CIP R/S."""
    from rdkit import Chem

    hybridisations = (
        Chem.HybridizationType.SP,
        Chem.HybridizationType.SP2,
        Chem.HybridizationType.SP3,
        Chem.HybridizationType.SP3D,
        Chem.HybridizationType.SP3D2,
    )
    chirality = _one_hot(atom.GetProp("_CIPCode"), ("R", "S")) if atom.HasProp("_CIPCode") else [0.0, 0.0]
    return [
        *_one_hot(atom.GetSymbol(), TGSA_ATOM_SYMBOLS),
        *_one_hot(atom.GetDegree(), range(11)),
        *_one_hot(atom.GetValence(Chem.ValenceType.IMPLICIT), range(7)),
        float(atom.GetFormalCharge()),
        float(atom.GetNumRadicalElectrons()),
        *_one_hot(atom.GetHybridization(), hybridisations),
        float(atom.GetIsAromatic()),
        *_one_hot(atom.GetTotalNumHs(), range(5)),
        float(atom.IsInRing()),
        *chirality,
    ]


def tgsa_graph(molecule) -> Data:
    """A molecule as TGSA's TGDRP reads it: 77 features per atom, each bond in both directions."""
    x = torch.tensor([tgsa_atom_features(atom) for atom in molecule.GetAtoms()], dtype=torch.float32)
    bonds = [(bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()) for bond in molecule.GetBonds()]
    directed = [pair for i, j in bonds for pair in ((i, j), (j, i))]
    edge_index = torch.tensor(directed, dtype=torch.long).T if directed else torch.zeros((2, 0), dtype=torch.long)
    return Data(x=x, edge_index=edge_index.contiguous())


def _unique_smiles(table: pd.DataFrame, source: str) -> pd.Series:
    """One SMILES per drug, indexed by drug name (sorted); checks columns and conflicts."""
    missing = [column for column in ("drug", "smiles") if column not in table.columns]
    if missing:
        raise InputError(
            f"{source}: missing column(s) {', '.join(repr(c) for c in missing)} (has: {', '.join(map(str, table.columns)) or 'none'})"
        )
    if table.empty:
        raise InputError(f"{source}: the drug table is empty")
    if table["drug"].isna().any():
        raise InputError(f"{source}: a row has no drug name")
    pairs = table[["drug", "smiles"]].astype({"drug": str})
    no_smiles = pairs.loc[pairs["smiles"].isna() | (pairs["smiles"].astype(str).str.strip() == ""), "drug"]
    if len(no_smiles):
        raise InputError(f"{source}: drug '{no_smiles.iloc[0]}' has no SMILES")
    pairs = pairs.assign(smiles=pairs["smiles"].astype(str).str.strip()).drop_duplicates()
    conflicting = pairs.loc[pairs["drug"].duplicated(), "drug"]
    if len(conflicting):
        name = conflicting.iloc[0]
        variants = sorted(pairs.loc[pairs["drug"] == name, "smiles"])
        raise InputError(f"{source}: drug '{name}' has {len(variants)} different SMILES ({', '.join(variants)})")
    return pairs.set_index("drug")["smiles"].sort_index()


def _parse(name: str, smiles: str, source: str):
    from rdkit import Chem, rdBase

    with rdBase.BlockLogs():  # RDKit prints parse errors itself; ours is the one-line InputError
        molecule = Chem.MolFromSmiles(smiles)
    if molecule is None or molecule.GetNumAtoms() == 0:
        raise InputError(f"{source}: drug '{name}': RDKit cannot parse its SMILES '{smiles}'")
    return molecule


def _to_data(graph, name: str, source: str) -> Data:
    # deepchem returns an empty array instead of raising when a molecule fails
    if not hasattr(graph, "node_features"):
        raise InputError(f"{source}: drug '{name}': deepchem could not build its molecular graph")
    return Data(x=torch.as_tensor(graph.node_features, dtype=torch.float32), edge_index=torch.as_tensor(graph.edge_index, dtype=torch.long))


@contextlib.contextmanager
def _quiet_deepchem() -> Iterator[None]:
    """deepchem logs import-time warnings about optional backends, RDKit deprecation notes: hide both."""
    from rdkit import rdBase

    logger = logging.getLogger("deepchem")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), rdBase.BlockLogs():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
