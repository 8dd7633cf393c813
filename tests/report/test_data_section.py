"""The report's data section as HTML: present only with data axes, with its tables and the recommendation."""

from __future__ import annotations

import copy

from tests.study.simulated_data_axes import one_width_data_axes

from roboscale.report import render_html
from roboscale.report.data_section import marginal_table, mixture_table

EMPTY = {"title": "t", "runs": [], "curves": [], "groups": []}


def test_no_data_axes_no_section():
    page = render_html(EMPTY)
    assert 'id="data"' not in page and 'href="#data"' not in page and "fig-data-" not in page


def test_the_section_shows_recommendation_exponents_and_worth():
    data_axes = one_width_data_axes()
    page = render_html({**EMPTY, "data_axes": data_axes})
    assert page.index('id="data-recommendation"') < page.index('id="fig-data-amount-loss"')
    assert data_axes["recommendation"]["sentence"] in page
    heldout = next(row for row in data_axes["exponents"] if row["y"] == "heldout_loss")
    assert f"{heldout['alpha']:.3g} [" in page  # alpha with its interval in the exponents table
    assert "one repeat is worth" in page and "worth in clean episodes" in page
    assert page.count("<figure") == 7


def test_an_option_that_cannot_be_evaluated_shows_why():
    marginal = copy.deepcopy(one_width_data_axes()["marginal"])
    marginal[0]["options"][2] = {"option": "quality", "metric": "loss", "error": "needs the amount axis crossed"}
    html = str(marginal_table(marginal))
    assert '<span class="error">needs the amount axis crossed</span>' in html
    assert "cleaner demonstrations" in html


def test_a_missing_mixture_law_is_shown_as_its_error():
    entries = [{"width": 32, "sources": ["a", "b"], "laws": [], "optimal": {"error": "no mixture law for 'a'"}}]
    html = str(mixture_table(entries))
    assert "no mixture law for &#x27;a&#x27;" in html and "<td>32</td>" in html
