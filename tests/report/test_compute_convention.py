"""The report shows each group's C = k N D beside its compute-optimal forecasts."""

from roboscale.report.analysis import GroupData
from roboscale.report.tables import compute_convention_text, forecasts_table

PLAN = {"method": "parametric", "budgets": [{"C": 1e13, "N_opt": 4e4, "D_opt": 5.03e7, "loss": 1.2}]}


def group(convention: dict | None) -> dict:
    return {"label": "wm · uniform:256", "compute_optimal": {"parametric": PLAN}, "compute_convention": convention}


def test_the_forecasts_table_names_the_measured_convention():
    convention = {"k": 4.97, "k_min": 4.92, "k_max": 5.17, "source": "measured from 24 runs"}
    html = forecasts_table(GroupData(group(convention), "wm", []))
    assert "<caption>Compute: C = 4.97 N D FLOPs (measured from 24 runs, 4.92 to 5.17 over runs)." in html


def test_no_convention_no_caption():
    assert compute_convention_text(group(None)) is None
    assert compute_convention_text(group({"error": "no finished runs"})) is None
    assert "<caption>" not in forecasts_table(GroupData(group(None), "wm", []))
    one_k = compute_convention_text(group({"k": 12.0, "k_min": 12.0, "k_max": 12.0, "source": "given"}))
    assert one_k.startswith("Compute: C = 12 N D FLOPs (given).")
