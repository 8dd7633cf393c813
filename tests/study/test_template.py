"""The study file `roboscale study init` writes plans and runs, as written, to a fitted
IsoFLOP law on the data it generates, and says which of its values are not defaults."""

import json
import math
import re
import tomllib
from dataclasses import MISSING, fields, replace

import pytest

from roboscale.study import EXAMPLE, load_study, plan_study, run_study
from roboscale.study.spec import _SECTIONS


def _template(tmp_path):
    path = tmp_path / "study.toml"
    path.write_text(EXAMPLE)
    return load_study(path)


def test_the_template_marks_exactly_the_values_that_are_not_defaults():
    """A line says "default:" when, and only when, its value differs from the default."""
    raw = tomllib.loads(EXAMPLE)
    lines = {}
    section = ""
    for line in EXAMPLE.splitlines():
        if match := re.match(r"\[(\w+)\]", line):
            section = match[1]
        elif match := re.match(r"(\w+) = ", line):
            lines[(section, match[1])] = line
    checked = 0
    for name, cls in _SECTIONS.items():
        for key, value in raw.get(name, {}).items():
            default = _default(cls, key)
            marked = "# default:" in lines[(name, key)]
            assert marked == (value != default), (name, key, value, default)
            checked += 1
    assert checked >= 30  # the template shows (nearly) every setting


def _default(cls, key: str):
    (field,) = [f for f in fields(cls) if f.name == key]
    return field.default if field.default_factory is MISSING else field.default_factory()


def test_the_template_plans_every_budget_around_its_expected_optimum(tmp_path, tiny_study_data):
    """Every budget trains its sizes_per_budget sizes (none left out for too few steps),
    four neighbouring ladder widths with the prior optimum N* strictly inside them.
    Planned on the tests' small pointmass dataset (same simulator, tasks and quality as
    the template's; passes over the data are checked by the full run below)."""
    spec = _template(tmp_path)
    sweep = spec.sweep
    plan = plan_study(replace(spec, sweep=replace(sweep, max_epochs=1e6)), str(tiny_study_data))
    assert len(plan.active) == len(plan.runs) == len(spec.budgets()) * sweep.sizes_per_budget == 12
    params = plan.ladder[("bc", "uniform:64")]
    per_token = plan.flops_per_token[("bc", "uniform:64")]
    for budget in spec.budgets():
        widths = sorted(run.d_model for run in plan.active if run.budget == budget)
        assert len(widths) == 4 and widths == sweep.widths[sweep.widths.index(widths[0]) :][:4]  # neighbours
        k = per_token[widths[1]] / params[widths[1]]
        expected = math.sqrt(budget / (k * sweep.tokens_per_param))
        assert params[widths[0]] < expected < params[widths[-1]], (budget, widths, expected)


@pytest.mark.long  # the whole template study: about 5 CPU-minutes (pytest -m long)
def test_the_template_runs_to_a_fitted_isoflop_law(tmp_path):
    result = run_study(_template(tmp_path), bootstrap=100)
    assert len(result.plan.active) == len(result.plan.runs) == 12  # nothing left out on the generated data
    assert result.counts == {"finished": 12, "failed": 0}
    report = json.loads((result.folder / "report" / "report.json").read_text())
    (group,) = report["groups"]
    isoflop = group["isoflop"]
    assert "error" not in isoflop, isoflop.get("error")
    assert isoflop["n_usable_budgets"] == 3 and 0.2 < isoflop["a"] < 0.6  # the optimum grows with compute
