"""The paper's numbers in one module (experiments/paper_numbers.py), looked up by attack key, against the paper's
tables typed out again here; the report and the app show them from the same place."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.attack_keys import attack_key
from experiments.paper_numbers import (
    TABLE_I,
    TABLE_II,
    TABLE_III,
    TABLE_IV,
    TABLE_IV_COLUMNS,
    TABLE_IV_ROWS,
    paper_row,
    table_iii_row,
)
from experiments.reader import Experiment
from precompute.report_cmd import table_iii, table_iv

REPO = Path(__file__).resolve().parents[1]
DEMO = next((REPO / "assets" / "demo").iterdir())
# the three-ε run of the project's own model: Table III has rows for ε = 1, 3, 8
SWEEP = next(path for path in sorted((REPO / "assets" / "results").glob("cifar10-paper-resnet20-*"))
             if len(Experiment(str(path)).attack_keys) == 5)

# The paper's Table III as printed (METHOD.md §7): ε/255, success %, IdCor, p.
PRINTED_TABLE_III = [(1, 68.56, 0.59, 0.02), (3, 99.78, 0.53, 0.04), (8, 100.0, 0.60, 0.01)]


def numbers(svcca: float, cosine_mean: float, cosine_std: float, idcor: float, p_value: float) -> dict:
    return {"svcca": svcca, "cosine_mean": cosine_mean, "cosine_std": cosine_std, "idcor": idcor, "p_value": p_value}


@pytest.mark.parametrize(("model", "size", "key", "expected"), [
    ("resnet20", 32, "fmn", numbers(0.25, 0.49, 0.27, 0.66, 0.01)),
    ("resnet20", 32, "pgd-8", numbers(0.30, 0.49, 0.28, 0.60, 0.01)),
    ("resnet20", 32, "pgd-1", {"idcor": 0.59, "p_value": 0.02}),  # Table III: IdCor and p only
    ("resnet20", 32, "pgd-3", {"idcor": 0.53, "p_value": 0.04}),
    ("resnet20", 32, "pgd-5", None),  # an ε the paper did not run
    ("resnet20", 32, "pgd-1+bpda", None),  # an adaptive variant: the paper ran none
    ("vit_b_16", 224, "deepfool", numbers(0.22, 0.53, 0.19, 0.56, 0.01)),
    ("resnet18", 224, "pgd-8", numbers(0.19, 0.60, 0.16, 0.62, 0.01)),
    ("resnet18", 224, "pgd-1", None),  # Table III is CIFAR-10 only
    ("resnet20", 224, "fmn", None),
], ids=lambda v: str(v) if not isinstance(v, dict) else "row")
def test_paper_row_by_model_size_and_key(model, size, key, expected):
    assert paper_row(model, size, key) == expected


def test_table_iii_by_key_and_by_eps():
    for eps, success, idcor, p in PRINTED_TABLE_III:
        key = attack_key("pgd", eps / 255)
        assert table_iii_row(key) == TABLE_III[float(eps)]
        printed = {"success_rate": success / 100, "idcor": idcor, "p_value": p}
        assert table_iii_row(key) == pytest.approx(printed, abs=1e-9)
    for key in ["fmn", "deepfool", "pgd-5", "pgd-8+bpda", "pgd-x", "none"]:
        assert table_iii_row(key) is None, key


def test_tables_cover_the_three_attacks():
    attacks = ["fmn", "pgd-8", "deepfool"]
    assert list(TABLE_I) == attacks
    assert all(list(rows) == attacks for rows in TABLE_II.values()) and sorted(TABLE_II) == ["resnet18", "vit_b_16"]
    assert TABLE_IV_ROWS == ["clean", *attacks] and TABLE_IV_COLUMNS == ["none", *attacks]
    assert list(TABLE_IV) == TABLE_IV_ROWS and all(list(TABLE_IV[r]) == TABLE_IV_COLUMNS for r in TABLE_IV_ROWS)
    assert TABLE_IV["pgd-8"]["pgd-8"] == 0.54 and TABLE_IV["clean"]["none"] == 0.92


def test_report_table_iii_shows_the_printed_paper_numbers():
    rows = [line.strip("|").split("|") for line in table_iii(Experiment(str(SWEEP)))[2:]]
    shown = [(cells[0].strip(), cells[6].strip(), cells[7].strip(), cells[8].strip()) for cells in rows]
    assert shown == [(f"{eps}/255", f"{success:.2f}%", f"{idcor:.2f}", f"{p:.2f}")
                     for eps, success, idcor, p in PRINTED_TABLE_III]


def test_report_table_iv_brackets_the_paper_value_of_each_cell():
    lines = table_iv(Experiment(str(DEMO)))
    assert lines[0] == "| data \\ map | no map | FMN | PGD ε=8/255 | DeepFool |"
    pgd_row = next(line for line in lines if line.startswith("| PGD ε=8/255 |"))
    brackets = [cell.strip().split(" ")[1] for cell in pgd_row.strip("|").split("|")[1:]]
    assert brackets == ["(0.00)", "(0.43)", "(0.54)", "(0.44)"]  # Table IV's PGD row as printed
