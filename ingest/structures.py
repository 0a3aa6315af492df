"""Drug names to structures: the join every drug-response dataset makes, and counts in its ledger.

Response tables name their drugs in their own way (CCLE's 'AZD6244', 'PF2341066',
'ZD-6474'; GDSC's 'Selumetinib', 'Crizotinib', 'Vandetanib'). A name finds its structure
through, in order:

1. GDSC's compound list, by its Name, compared in a normalised form (`name_key`: case,
   hyphens, spaces and other punctuation ignored), when that row has a PubChem CID;
2. the same list's Synonyms column, when exactly one compound with a CID carries the synonym;
3. PubChem by name (the source row `pubchem_names`: one PUG-REST name query per name the
   list leaves unmatched, `unmatched_names`), the first CID PubChem answers: for the name
   itself, else for the list's other names of the same compound (CCLE's 'ZD-6474' is a
   synonym of the list's 'Vandetanib', listed without a CID, which PubChem knows).

The CID's SMILES comes from PubChem's property table (the CID query `pubchem_smiles`, or
the name query's own answer). A drug left without one is dropped with its pairs, and both
counts, with the names, go to the ledger (step `drug_structure`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from celllm.errors import InputError
from ingest.ledger import Ledger

MATCHED_BY = ("compound list name", "compound list synonym", "PubChem name")


def name_key(name) -> str:
    """The form names are compared in: case-folded, every character but letters and digits removed
    ('ZD-6474' and 'ZD6474', 'Nutlin-3a (-)' and 'Nutlin-3a(-)' meet)."""
    return re.sub(r"[^0-9a-z]", "", str(name).casefold())


@dataclass(frozen=True)
class DrugStructures:
    """What the sources say about drug names: GDSC's compound list (drug, synonyms, pubchem_cid
    or missing), PubChem's CID -> SMILES table, and PubChem's answers by name (query, pubchem_cid,
    smiles; empty where PubChem knows no such name)."""

    compounds: pd.DataFrame
    smiles_by_cid: pd.DataFrame
    by_name: pd.DataFrame | None = None

    def _list_lookup(self) -> tuple[dict[str, int], dict[str, int]]:
        """name key -> CID through the list's names, and through its synonyms (ambiguous synonyms left out)."""
        with_cid = self.compounds[self.compounds["pubchem_cid"].notna()]
        by_name: dict[str, int] = {}
        for drug, cid in zip(with_cid["drug"], with_cid["pubchem_cid"]):
            by_name.setdefault(name_key(drug), int(cid))
        synonym_cids: dict[str, set[int]] = {}
        for synonyms, cid in zip(with_cid["synonyms"], with_cid["pubchem_cid"]):
            for synonym in synonyms:
                if name_key(synonym):
                    synonym_cids.setdefault(name_key(synonym), set()).add(int(cid))
        by_synonym = {key: next(iter(cids)) for key, cids in synonym_cids.items() if len(cids) == 1 and key not in by_name}
        return by_name, by_synonym

    def _families(self) -> dict[str, list[str]]:
        """name key -> the keys of every name of the one compound the list gives it (its Name first)."""
        owners: dict[str, set[int]] = {}
        names = []
        for i, (drug, synonyms) in enumerate(zip(self.compounds["drug"], self.compounds["synonyms"])):
            keys = list(dict.fromkeys(k for k in (name_key(drug), *map(name_key, synonyms)) if k))
            names.append(keys)
            for key in keys:
                owners.setdefault(key, set()).add(i)
        return {key: names[next(iter(rows))] for key, rows in owners.items() if len(rows) == 1}

    def unmatched_names(self, names: Iterable[str]) -> list[str]:
        """The names the compound list gives no CID for, in order, once each: what PubChem is asked by name."""
        by_name, by_synonym = self._list_lookup()
        out = []
        for name in dict.fromkeys(str(n).strip() for n in names):
            if name and name_key(name) not in by_name and name_key(name) not in by_synonym:
                out.append(name)
        return out

    def match(self, names: Iterable[str]) -> pd.DataFrame:
        """One row per distinct name: drug, pubchem_cid, smiles, matched_by ('' and NaN where none)."""
        by_name, by_synonym = self._list_lookup()
        smiles = dict(zip(self.smiles_by_cid["pubchem_cid"].astype(np.int64), self.smiles_by_cid["smiles"]))
        answers: dict[str, tuple[int, str]] = {}
        if self.by_name is not None:
            for query, cid, value in zip(self.by_name["query"], self.by_name["pubchem_cid"], self.by_name["smiles"]):
                if pd.notna(cid) and name_key(query) not in answers:
                    answers[name_key(query)] = (int(cid), str(value))
        families = self._families()
        rows = []
        for name in dict.fromkeys(str(n).strip() for n in names):
            key = name_key(name)
            cid, value, how = None, None, ""
            for lookup, label in ((by_name, MATCHED_BY[0]), (by_synonym, MATCHED_BY[1])):
                if key in lookup and lookup[key] in smiles:
                    cid, value, how = lookup[key], smiles[lookup[key]], label
                    break
            if not how:
                asked = next((k for k in [key, *families.get(key, [])] if k in answers), None)
                if asked is not None:
                    (cid, value), how = answers[asked], MATCHED_BY[2]
            rows.append({"drug": name, "pubchem_cid": cid, "smiles": value, "matched_by": how})
        return pd.DataFrame(rows, columns=["drug", "pubchem_cid", "smiles", "matched_by"])


def attach_structures(pairs: pd.DataFrame, structures: DrugStructures, ledger: Ledger, source: str) -> pd.DataFrame:
    """`pairs` (with a ``drug`` column) with ``smiles`` added; pairs of drugs without a structure dropped.
    The ledger gets step `drug_structure` twice, in drugs and in pairs, naming the lost drugs."""
    matched = structures.match(pairs["drug"])
    found = matched[matched["matched_by"] != ""]
    lost = matched.loc[matched["matched_by"] == "", "drug"].tolist()
    how = matched["matched_by"].value_counts()
    detail = ", ".join(f"{int(how.get(label, 0))} by {label}" for label in MATCHED_BY) + (
        f"; {len(lost)} with no structure" if lost else ""
    )
    ledger.record("drug_structure", "drugs", len(matched), len(found), detail, lost)
    keep = pairs["drug"].isin(found["drug"])
    ledger.record(
        "drug_structure", "pairs", len(pairs), int(keep.sum()), f"pairs of the {len(lost)} drug(s) without a structure" if lost else "", ()
    )
    if not keep.any():
        raise InputError(f"{source}: none of its {len(matched)} drugs has a structure (compound list, synonyms, PubChem by name)")
    lookup = found.set_index("drug")["smiles"]
    return pairs[keep].assign(smiles=pairs.loc[keep, "drug"].map(lookup).to_numpy())
