"""results/summary.md and the README's quote of it (benchmarks/summary.py): the numbers come from the tables,
which come from run records written here by hand (the reference: means and spreads computed in the test)."""

import json

import numpy as np
import pytest

from benchmarks.aggregate import write_tables
from benchmarks.summary import SUMMARY_BEGIN, SUMMARY_END, main, quote_in, summary
from celllm.errors import InputError


def _records(tmp_path, commit="abc1234def5678"):
    paths, scores = [], {"logreg_l1": [0.80, 0.82], "majority": [0.34, 0.34], "celllm_probe": [0.50, 0.46]}
    kinds = {"logreg_l1": "baseline", "majority": "control", "celllm_probe": "celllm"}
    for model, values in scores.items():
        for seed, accuracy in enumerate(values):
            path = tmp_path / "runs" / model / f"seed{seed}" / "metrics.json"
            path.parent.mkdir(parents=True)
            record = {
                "task": "annotation",
                "setting": "standard",
                "dataset": "pbmc68k_reduced",
                "simulated": False,
                "model": model,
                "kind": kinds[model],
                "seed": seed,
                "metrics": {"accuracy": accuracy, "macro_f1": accuracy / 2},
                "provenance": {"git_commit": commit},
            }
            path.write_text(json.dumps(record))
            paths.append(path)
    return paths, scores


def test_the_summary_holds_each_models_numbers_best_first_with_commit_and_machine(tmp_path):
    records, scores = _records(tmp_path)
    write_tables(records, tmp_path / "annotation.csv", tmp_path / "annotation.md", ["accuracy", "macro_f1"])
    text = summary({"annotation": tmp_path / "annotation.csv"}, records, {"annotation": ["accuracy", "macro_f1"]})
    assert text.startswith("Measured at commit abc1234def56 on ") and " cores, " in text.splitlines()[0] and "torch " in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert [r.split(" | ")[0].strip("| ") for r in rows] == ["logreg_l1", "celllm_probe", "majority"]  # ranked by accuracy
    for row, model in zip(rows, ("logreg_l1", "celllm_probe", "majority")):
        mean, sd = np.mean(scores[model]), np.std(scores[model], ddof=1)
        assert f"{mean:.3f} ± {sd:.3f}" in row


def test_the_readme_quotes_the_summary_between_its_markers(tmp_path, capsys):
    readme, quoted = tmp_path / "README.md", tmp_path / "summary.md"
    quoted.write_text("Measured at commit x on y.\n| a | b |\n")
    readme.write_text(f"# Title\n\nbefore\n{SUMMARY_BEGIN}\nold numbers\n{SUMMARY_END}\nafter\n")
    assert main([str(readme), str(quoted)]) == 0 and main([str(readme), str(quoted)]) == 0
    assert readme.read_text() == f"# Title\n\nbefore\n{SUMMARY_BEGIN}\nMeasured at commit x on y.\n| a | b |\n{SUMMARY_END}\nafter\n"
    assert "already quotes" in capsys.readouterr().out  # the second run changes nothing
    readme.write_text("no markers\n")
    with pytest.raises(InputError, match="needs one"):
        quote_in(readme, quoted)
    assert main([str(readme), str(quoted)]) == 2 and readme.read_text() == "no markers\n"


def test_the_shipped_readme_quotes_a_summary_with_its_commit_and_machine():
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = text.split(SUMMARY_BEGIN)[1].split(SUMMARY_END)[0]
    assert (
        block.lstrip().startswith("Measured at commit ") and " cores, " in block and "**annotation / pbmc68k_reduced / standard**" in block
    )
