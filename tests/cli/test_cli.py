"""End-to-end: the real `roboscale` command in a subprocess, at small bootstrap sizes."""

import json

import numpy as np
import pandas as pd
import pytest
from tests.helpers import run_cli as roboscale

from roboscale.fit import simulate_isoflop_runs, simulate_learning_curves
from roboscale.fit.examples import example_path

TRUTH = dict(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)


def run_json(*args: str) -> dict:
    result = roboscale(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def isoflop_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    runs = simulate_isoflop_runs(
        **TRUTH, budgets=np.geomspace(1e18, 1e22, 7), model_sizes=np.geomspace(1e7, 1e11, 13), noise=0.003
    )
    runs.rename(columns={"N": "params", "C": "flops"}).drop(columns="D").to_csv(path, index=False)
    return path


def test_help_lists_every_command():
    result = roboscale("--help")
    assert result.returncode == 0
    assert "fit" in result.stdout
    fit_help = roboscale("fit", "--help").stdout
    for command in ("parametric", "isoflop", "frontier", "power-law", "audit"):
        assert command in fit_help


def test_main_job_on_the_bundled_example_prints_law_and_allocation():
    result = roboscale("fit", "parametric", "--bootstrap", "50")
    assert result.returncode == 0, result.stderr
    assert "L(N, D) = E + A / N^alpha + B / D^beta" in result.stdout
    assert "Compute-optimal allocation" in result.stdout
    assert "1.891" in result.stdout  # E of the full 245 Hoffmann/Epoch points


def test_parametric_json_has_the_documented_keys():
    out = run_json(
        "fit", "parametric", str(example_path("hoffmann2022")), "--drop-highest-loss", "5", "--bootstrap", "100"
    )
    for key in ("E", "A", "B", "alpha", "beta", "ci"):
        assert key in out
    assert out["E"] == pytest.approx(1.817, abs=0.002)
    assert set(out["ci"]) >= {"E", "A", "B", "alpha", "beta"}
    assert out["runs"]["dropped"] == {"highest loss": 5}
    assert len(out["compute_optimal"]["budgets"]) == 4


def test_isoflop_json_with_column_mapping(isoflop_csv):
    out = run_json("fit", "isoflop", str(isoflop_csv), "--n", "params", "--c", "flops", "--bootstrap", "100")
    assert out["a"] == pytest.approx(0.28 / 0.62, abs=0.03)
    assert out["ci"]["a"][0] < out["a"] < out["ci"]["a"][1]
    # N_opt at the largest budget against the closed form of the simulated law (Hoffmann et
    # al. eq. 4): G (C/6)^a with G = (alpha A / (beta B))^(1/(alpha+beta)) gives 5.16e9.
    largest = out["compute_optimal"]["budgets"][0]
    assert largest["C"] == 1e22
    assert largest["N_opt"] == pytest.approx(closed_form_n_opt(1e22), rel=0.15)
    assert largest["N_opt_lo"] < closed_form_n_opt(1e22) < largest["N_opt_hi"]


def closed_form_n_opt(flops: float) -> float:
    """Compute-optimal parameters of TRUTH at ``flops`` FLOPs, with C = 6 N D."""
    alpha, beta = TRUTH["alpha"], TRUTH["beta"]
    G = (alpha * TRUTH["A"] / (beta * TRUTH["B"])) ** (1 / (alpha + beta))
    return G * (flops / 6) ** (beta / (alpha + beta))


def test_fit_uses_the_runs_own_flops_per_parameter_per_token_unless_told(tmp_path):
    path = tmp_path / "k12.csv"
    simulate_isoflop_runs(
        **TRUTH, budgets=np.geomspace(1e18, 1e21, 4), model_sizes=np.geomspace(1e7, 1e10, 7), flops_per_param_token=12
    ).to_csv(path, index=False)
    for option, k in (((), 12.0), (("--flops-per-param-token", "6"), 6.0)):
        out = run_json("fit", "parametric", str(path), "--bootstrap", "0", *option)
        assert out["flops_per_param_token"] == pytest.approx(k) and out["runs"]["compute_convention"]["k"] == k
        for row in out["compute_optimal"]["budgets"]:
            assert k * row["N_opt"] * row["D_opt"] == pytest.approx(row["C"], rel=1e-9)
    shown = roboscale("fit", "parametric", str(path), "--bootstrap", "0").stdout
    assert "compute: C = 12 N D (12 FLOPs per parameter per token)" in shown


def test_group_fits_each_group(tmp_path):
    path = tmp_path / "atari.csv"
    frame = pd.read_csv(example_path("atari_bc"))
    frame[frame.game.isin(["Qbert", "Breakout"])].to_csv(path, index=False)
    out = run_json("fit", "isoflop", str(path), "--group", "game", "--bootstrap", "50")
    assert out["group"] == "game"
    assert set(out["results"]) == {"Breakout", "Qbert"}
    assert all("a" in result for result in out["results"].values())


def test_frontier_power_law_and_audit(tmp_path, isoflop_csv):
    curves = tmp_path / "curves.parquet"
    simulate_learning_curves(
        **TRUTH, model_sizes=np.geomspace(1e6, 1e10, 17), max_flops=1e21, min_tokens=1e7, points_per_curve=30
    ).to_parquet(curves)
    frontier = run_json("fit", "frontier", str(curves), "--bootstrap", "50")
    assert frontier["a"] == pytest.approx(0.4516, abs=0.02)

    law = run_json("fit", "power-law", str(curves), "--x", "C", "--y", "loss", "--floor", "--bootstrap", "0")
    assert law["law"] == "loss = E + A * C^-alpha"

    audit = run_json("fit", "audit", str(isoflop_csv), "--method", "parametric", "--bootstrap", "0")
    assert audit["mean_abs_relative_error"] < 0.02

    text = roboscale("fit", "audit", str(isoflop_csv), "--method", "isoflop", "--bootstrap", "0")
    assert text.returncode == 0, text.stderr
    assert "N_opt at C =" in text.stdout


@pytest.mark.parametrize(
    "content, args, message",
    [
        ("", [], "could not read"),
        (None, [], "not found"),
        ("N,D,loss\n1e6,1e9,3\n2e6,1e9,nan\n", [], "invalid loss"),
        ("N,D,loss\n1e6,1e9,3\n2e6,1e9,-1\n", [], "invalid loss"),
        ("N,D,loss\n1e6,1e9,3\n2e6,2e9,2.9\n", [], "at least 6 runs"),
        ("params,D,loss\n1e6,1e9,3\n", ["--n", "Model Size"], "available columns: params, D, loss"),
        ("N,D,loss\n" + "".join(f"1e6,{10 ** (8 + i / 3)},{3 - i / 10}\n" for i in range(8)), [], "same model size"),
        ("N,D,loss\n1e6,1e9,3\n2e6,1e9,2.8\n", ["--bootstrap", "-5"], "bootstrap=-5"),
    ],
)
def test_bad_input_is_one_line_with_exit_code_2(tmp_path, content, args, message):
    path = tmp_path / "runs.csv"
    if content is not None:
        path.write_text(content)
    result = roboscale("fit", "parametric", str(path), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_fit_that_did_not_converge_says_so_instead_of_printing_numbers():
    result = roboscale("fit", "parametric", "--max-iter", "1", "--bootstrap", "0")
    assert result.returncode == 1
    assert "did not converge" in result.stderr
    assert "Compute-optimal" not in result.stdout
