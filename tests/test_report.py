"""`precompute report` on the shipped experiments: well-formed tables, IdCor's shuffled baseline, small-sample caveats."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.attack_keys import attack_label
from core.metrics.correlate import null_idcor_median
from core.metrics.idcor import null_idcor
from experiments.reader import Experiment
from precompute.report_cmd import build_report

REPO = Path(__file__).resolve().parents[1]
RESULTS = sorted((REPO / "assets" / "results").glob("cifar10-paper-resnet20-*"))
# the project's own model's run (Tables I, III and IV: five correlation rows), whatever its directory's hash
OWN = next(path for path in RESULTS if len(Experiment(str(path)).attack_keys) == 5)
DEMO = next((REPO / "assets" / "demo").iterdir())


def tables(report: str) -> list[list[list[str]]]:
    """Every markdown table of the report as rows of cells (header first, the |---| line dropped)."""
    found, current = [], []
    for line in report.splitlines() + [""]:
        if line.startswith("|"):
            if not set(line) <= set("|-"):
                current.append([cell.strip() for cell in line.strip("|").split("|")])
        elif current:
            found.append(current)
            current = []
    return found


def test_every_table_row_has_its_header_width():
    for path in [*RESULTS, DEMO]:
        for table in tables(build_report(Experiment(str(path)))):
            assert {len(row) for row in table} == {len(table[0])}, (path.name, table[0])


def test_shuffled_idcor_column_is_the_median_of_the_stored_null():
    """Table I's 'shuffled IdCor' equals the median of (id_a + id_b - null_id) / max(id_a, id_b), by hand."""
    experiment = Experiment(str(OWN))
    table_i = tables(build_report(experiment))[0]
    column = table_i[0].index("shuffled IdCor")
    for row in table_i[1:]:
        key = next(k for k in experiment.attack_keys if attack_label(k) == row[0])
        summary = experiment.correlation(key)
        by_hand = np.median([(summary["id_a"] + summary["id_b"] - z) / max(summary["id_a"], summary["id_b"])
                             for z in summary["null_ids"]])
        assert row[column] == f"{by_hand:.2f}"
        assert null_idcor_median(summary) == float(np.median(null_idcor(summary["id_a"], summary["id_b"],
                                                                        summary["null_ids"])))


def test_demo_report_lists_its_caveats():
    report = build_report(Experiment(str(DEMO)))
    assert "**Caveats at this sample size:**" in report
    assert "- **FMN**: SVCCA is inflated by the sample size: with 20 pairs, 17 of its 18" in report
    assert report.count("IdCor is not meaningful here") == 3  # FMN, PGD, DeepFool
    big = build_report(Experiment(str(OWN)))  # Table I's attacks have hundreds of pairs each: no caveat on them
    for label in ("FMN", "DeepFool", "PGD ε=8/255"):
        assert f"- **{label}**:" not in big


def test_cpu_and_gpu_arithmetic_are_recorded_and_reported(monkeypatch):
    """The manifest names the CPU and the instruction set torch used (rebuilds are bit-for-bit only on the same
    kind of CPU), and on CUDA whether float32 convolutions and matmuls ran as TF32; the report shows the CPU
    for CPU runs and the arithmetic for GPU runs, and manifests from before either existed read as before."""
    import torch

    from precompute.report_cmd import device_note
    from precompute.runner import cpu_description, float32_arithmetic

    described = cpu_description()
    assert described.endswith(", " + torch.backends.cpu.get_cpu_capability()) and len(described) > len(", AVX2")
    assert float32_arithmetic(torch.device("cpu")) == "float32"
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    assert float32_arithmetic(torch.device("cuda")) == "convolutions TF32, matmuls float32"
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    assert float32_arithmetic(torch.device("cuda")) == "convolutions float32, matmuls TF32"
    assert device_note({"device": "cpu", "cpu": "AMD EPYC, AVX512"}) == " (AMD EPYC, AVX512)"
    gpu = {"device": "cuda:0 (NVIDIA H200)", "cpu": "AMD EPYC, AVX512"}
    assert device_note(gpu) == ""
    assert device_note({**gpu, "float32_arithmetic": "convolutions TF32, matmuls float32"}) == " (convolutions TF32, matmuls float32)"
    assert device_note({"device": "cpu"}) == ""
