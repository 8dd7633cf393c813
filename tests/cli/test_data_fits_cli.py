"""End-to-end: `roboscale fit mixture`, `fit effective-data` and `fit joint-data` in a subprocess."""

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from tests.helpers import run_cli as roboscale

from roboscale.fit.examples import example_path

DOMAINS = ("academic", "prose", "dialogue", "symbolic", "internet")
PROPORTIONS = ",".join(f"r_{d}" for d in DOMAINS)


def run_json(*args: str) -> dict:
    result = roboscale(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_mixture_fits_one_law_per_loss_column_and_the_optimal_mixture():
    out = run_json(
        "fit", "mixture", str(example_path("ye2024_mixing")), "--proportions", PROPORTIONS,
        "--loss", "loss_prose,loss_internet", "--target", "loss_prose=1,loss_internet=3", "--bootstrap", "20",
    )  # fmt: skip
    assert set(out["laws"]) == {"loss_prose", "loss_internet"}
    assert out["laws"]["loss_prose"]["objective"] == pytest.approx(1.233e-4, rel=0.02)  # Ye et al.'s value
    assert out["laws"]["loss_internet"]["objective"] == pytest.approx(8.166e-5, rel=0.02)
    assert set(out["laws"]["loss_prose"]["t"]) == {f"r_{d}" for d in DOMAINS}
    best = out["optimal_mixture"]
    assert best["target"] == {"loss_prose": 0.25, "loss_internet": 0.75}
    assert sum(best["proportions"].values()) == pytest.approx(1.0)
    assert out["runs"]["n_runs"] == 26


def test_mixture_with_group_has_one_object_per_group(tmp_path):
    share = np.linspace(0.0, 1.0, 6)
    rows = [
        {"size": size, "r_real": r, "r_sim": 1 - r, "loss": 1.0 + scale * np.exp(-2.0 * r)}
        for size, scale in (("small", 1.0), ("large", 0.5))
        for r in share
    ]
    path = tmp_path / "mix.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    out = run_json(
        "fit",
        "mixture",
        str(path),
        "--proportions",
        "r_real,r_sim",
        "--loss",
        "loss",
        "--group",
        "size",
        "--bootstrap",
        "0",
    )
    assert out["group"] == "size"
    assert out["results"]["large"]["k"] == pytest.approx(0.5, rel=0.02)
    assert out["results"]["small"]["t"]["r_real"] == pytest.approx(-2.0, abs=0.05)
    assert out["results"]["small"]["optimal_mixture"]["proportions"]["r_real"] == pytest.approx(1.0)


def test_mixture_rows_not_summing_to_one_are_refused_before_any_fit(tmp_path):
    path = tmp_path / "bad.csv"
    pd.DataFrame({"a": [0.5, 0.7, 0.2, 0.1], "b": [0.5, 0.4, 0.8, 0.9], "loss": [1.0, 1.1, 1.2, 1.3]}).to_csv(
        path, index=False
    )
    result = roboscale("fit", "mixture", str(path), "--proportions", "a,b", "--loss", "loss")
    assert result.returncode == 2
    assert "line 3 of bad.csv" in result.stderr and "not 1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    unknown = roboscale("fit", "mixture", str(path), "--proportions", "a,c", "--loss", "loss")
    assert unknown.returncode == 2 and "no column 'c'" in unknown.stderr
    few = tmp_path / "few.csv"
    pd.DataFrame({"a": [0.2, 0.5, 1.0], "b": [0.8, 0.5, 0.0], "loss": [1.0, 0.9, 0.8]}).to_csv(few, index=False)
    too_few = roboscale("fit", "mixture", str(few), "--proportions", "a,b", "--loss", "loss")
    assert too_few.returncode == 2 and "train at least 4 mixtures" in too_few.stderr


def test_effective_data_prints_the_worth_of_each_level(tmp_path):
    expert = np.array([25.0, 50.0, 100.0, 200.0, 400.0])
    noisy = np.array([80.0, 160.0, 320.0, 640.0])
    frame = pd.concat(
        [
            pd.DataFrame({"source": "expert", "episodes": expert, "loss": 2.0 * expert**-0.3}),
            pd.DataFrame({"source": "noisy", "episodes": noisy, "loss": 2.0 * (0.4 * noisy) ** -0.3}),
        ]
    )
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    args = ("fit", "effective-data", str(path), "--amount", "episodes", "--loss", "loss", "--source", "source")
    out = run_json(*args, "--reference", "expert", "--bootstrap", "50")
    assert out["k"] == pytest.approx(0.4, rel=1e-3) and out["beta"] == pytest.approx(1.0, abs=1e-3)
    assert [level["worth"] for level in out["levels"]] == pytest.approx([0.4] * 4, rel=1e-3)
    assert set(out["sources"]) == {"noisy"}
    shown = roboscale(*args, "--reference", "expert", "--bootstrap", "0")
    assert shown.returncode == 0, shown.stderr
    assert "Effective data" in shown.stdout and "0.4" in shown.stdout
    wrong = roboscale(*args, "--reference", "clean")
    assert wrong.returncode == 2 and "is not a value of 'source'" in wrong.stderr


def test_joint_data_recovers_the_weight_and_refuses_a_single_model_size(tmp_path):
    grid = np.array(list(itertools.product([1e5, 4e5, 1.6e6], [25.0, 100.0, 400.0], [0.0, 100.0, 400.0])))
    N, expert, noisy = grid.T
    loss = 0.4 + 30.0 * N**-0.35 + 3.0 * (expert + 0.3 * noisy) ** -0.5
    path = tmp_path / "runs.csv"
    pd.DataFrame({"N": N, "episodes_expert": expert, "episodes_noisy": noisy, "loss": loss}).to_csv(path, index=False)
    args = ("fit", "joint-data", str(path), "--n", "N", "--amounts", "episodes_expert,episodes_noisy", "--loss", "loss")
    out = run_json(*args, "--reference", "episodes_expert", "--bootstrap", "0")
    assert out["w"]["episodes_noisy"] == pytest.approx(0.3, rel=0.02)
    assert out["w"]["episodes_expert"] == 1.0
    single = tmp_path / "single.csv"
    pd.read_csv(path).query("N == 1e5").to_csv(single, index=False)
    refused = roboscale("fit", "joint-data", str(single), *args[3:], "--reference", "episodes_expert")
    assert refused.returncode == 2 and "same model size" in refused.stderr


def test_mixture_and_data_constrained_without_a_table_fit_the_bundled_published_runs():
    """Like `fit isoflop` without a table: the README's commands reproduce the papers' objectives."""
    mixing = run_json("fit", "mixture", "--loss", "loss_symbolic", "--bootstrap", "10")
    assert mixing["laws"]["loss_symbolic"]["objective"] == pytest.approx(1.428e-4, rel=0.02)  # Ye et al.
    assert mixing["runs"]["n_runs"] == 26
    repeats = run_json("fit", "data-constrained", "--bootstrap", "10")
    assert repeats["objective"] <= 0.0158259  # Muennighoff et al.'s published optimum, or a lower one
    assert min(o["R_D_star"] for o in repeats["optima"]) == pytest.approx(15.39, rel=0.01)
    bad = roboscale("fit", "mixture", str(example_path("ye2024_mixing")))
    assert bad.returncode == 2 and "needs --proportions" in bad.stderr
