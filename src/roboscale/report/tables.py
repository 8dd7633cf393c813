"""The report's tables as HTML: summary, exponents vs published, forecasts, audits and runs."""

from __future__ import annotations

from roboscale.report.analysis import AUDIT_METHODS, FIT_METHODS, GroupData, fit_error, fit_or_none
from roboscale.report.formatting import (
    MISSING,
    as_float,
    exponent_range,
    flops,
    integer,
    is_number,
    number,
    percent,
    shorten,
    times,
    with_interval,
)
from roboscale.report.markup import Cell, Html, element, join, table
from roboscale.report.plotting import METHOD_NAMES


def error_text(message: str, *, short: bool = False) -> Html:
    """A fit's error message, styled as one; ``short``: its start, the whole on hover."""
    if short:
        return element("span", shorten(message), class_="error", title=message)
    return element("span", message, class_="error")


def fit_value(fit: dict | None, error: str | None, key: str, *, show_error: bool = True) -> Html | str:
    """``value [CI]`` of one fitted parameter; the fit's error (or "-") when there is no fit."""
    if fit is None:
        return error_text(error, short=True) if show_error and error else MISSING
    return with_interval(fit.get(key), (fit.get("ci") or {}).get(key))


# Summary ---------------------------------------------------------------------------------------------------------

SUMMARY_HEADERS = [
    "group",
    "verdict",
    "runs",
    "IsoFLOP a [CI]",
    "IsoFLOP b [CI]",
    "frontier a [CI]",
    "parametric alpha [CI]",
    "parametric beta [CI]",
    "parametric E [CI]",
    "audit: mean |rel. error| of held-out budget",
    "next run",
]


def summary_table(groups: list[GroupData]) -> Html:
    """One row per group: the fitted exponents, the audit errors and the recommended next run."""
    return table(SUMMARY_HEADERS, [_summary_row(data) for data in groups], class_="summary")


def _summary_row(data: GroupData) -> list:
    isoflop, frontier, parametric = (data.fit(method) for method in FIT_METHODS)
    iso_error, frontier_error, parametric_error = (data.fit_error(method) for method in FIT_METHODS)
    exponents = [
        fit_value(isoflop, iso_error, "a"),
        fit_value(isoflop, iso_error, "b", show_error=False),
        fit_value(frontier, frontier_error, "a"),
        fit_value(parametric, parametric_error, "alpha"),
        fit_value(parametric, parametric_error, "beta", show_error=False),
        fit_value(parametric, parametric_error, "E", show_error=False),
    ]
    if verdict_status(data.group) == "fails":
        exponents = [_untrusted(value) for value in exponents]
    return [
        element("a", data.label, href=f"#group-{data.slug}"),
        verdict_badge(data.group),
        _run_counts(data.group),
        *exponents,
        _audit_errors(data),
        recommendation_summary(data.group.get("recommendation")),
    ]


UNTRUSTED = "not trustworthy: the law does not extrapolate (see the verdict)"


def _untrusted(value) -> Html:
    """A fitted value of a failing group: struck through, marked as not a result."""
    if value == MISSING:
        return Html(MISSING)
    return join([element("s", value, title=UNTRUSTED), element("span", " not trustworthy", class_="error")])


def verdict_status(group: dict) -> str | None:
    """The group's verdict: "holds", "fails", "unchecked", or None when there is none."""
    return (group.get("verdict") or {}).get("status")


VERDICT_WORDS = {
    "holds": "holds: forecast checked beyond the fitted budgets",
    "fails": "fails: the law does not extrapolate",
    "unchecked": "unchecked: not checked beyond the fitted budgets",
}


def verdict_badge(group: dict) -> Html:
    """The verdict in one word, coloured, its reasons on hover."""
    status = verdict_status(group)
    if status is None:
        return Html(MISSING)
    reasons = "; ".join((group.get("verdict") or {}).get("reasons") or [])
    return element("span", status, class_=f"verdict verdict-{status}", title=reasons)


def verdict_text(group: dict) -> Html:
    """The verdict at the top of a group's section: its word and every reason."""
    status = verdict_status(group)
    if status is None:
        return element("p", "No verdict: this analysis has no forecast check.", class_="muted")
    reasons = (group.get("verdict") or {}).get("reasons") or []
    heading = element("strong", f"Verdict: {VERDICT_WORDS.get(status, status)}.")
    items = element("ul", *(element("li", reason) for reason in reasons)) if reasons else None
    return element("div", heading, items, class_=f"verdict-box verdict-{status}")


def _run_counts(group: dict) -> str:
    failed = group.get("n_failed") or 0
    return f"{integer(group.get('n_runs'))}" + (f" ({integer(failed)} failed)" if failed else "")


def _audit_errors(data: GroupData) -> Html:
    parts = []
    for method in AUDIT_METHODS:
        audit = data.audit(method)
        if fit_or_none(audit) is not None:
            parts.append(f"{METHOD_NAMES[method]}: {percent(audit.get('mean_abs_relative_error'))}")
        elif audit is not None:
            parts.append(join([f"{METHOD_NAMES[method]}: ", error_text(fit_error(audit), short=True)]))
    return join(_with_breaks(parts)) if parts else Html(MISSING)


def _with_breaks(parts: list) -> list:
    out = []
    for part in parts:
        if out:
            out.append(Html("<br>"))
        out.append(part)
    return out


def recommendation_summary(recommendation: dict | None) -> str:
    """The next run in a few words: width, depth and budget."""
    if not recommendation:
        return MISSING
    return (
        f"d_model {integer(recommendation.get('d_model'))}, {integer(recommendation.get('n_layer'))} layers, "
        f"{flops(recommendation.get('budget'))} ({recommendation.get('method', '?')})"
    )


def recommendation_text(recommendation: dict | None) -> str:
    """The next run in full: the summary, the compute-optimal N and D, and the reason."""
    if not recommendation:
        return "No recommendation: no fit could place the compute-optimal model size."
    text = (
        f"Train next: {recommendation_summary(recommendation)}; compute-optimal N = "
        f"{number(recommendation.get('N'))} parameters, D = {number(recommendation.get('D'))} tokens."
    )
    reason = recommendation.get("reason")
    return f"{text} Why: {reason}." if reason else text


# Exponents vs published ---------------------------------------------------------------------------------------------


def exponents_table(groups: list[GroupData], published: list[dict]) -> Html:
    """The exponent a of ``N_opt ∝ C^a``: each group's fits first, then the published values."""
    rows = []
    for data in groups:
        for method in FIT_METHODS:
            fit = data.fit(method)
            if fit is not None:
                level = as_float(fit.get("ci_level"))
                note = f"{percent(level, 0)} bootstrap interval" if is_number(level) else ""
                rows.append(
                    [
                        "this study",
                        f"{data.label} · {METHOD_NAMES[method]}",
                        with_interval(fit.get("a"), (fit.get("ci") or {}).get("a")),
                        note,
                    ]
                )
    for row in published:
        rows.append(
            [
                row.get("source", MISSING),
                row.get("setting", MISSING),
                exponent_range(row.get("a_low"), row.get("a_high")),
                row.get("note", ""),
            ]
        )
    return table(["source", "setting", "a in N_opt ∝ C^a", "note"], rows, class_="exponents")


# Forecasts -------------------------------------------------------------------------------------------------------

FORECAST_HEADERS = [
    "method",
    "compute C",
    "x largest budget",
    "N_opt [CI]",
    "D_opt [CI]",
    "tokens per parameter",
    "loss [CI]",
]


def forecasts_table(data: GroupData) -> Html:
    """Compute-optimal N, D and loss per method at each forecast budget."""
    rows = []
    for method, plan in (data.group.get("compute_optimal") or {}).items():
        name = METHOD_NAMES.get(method, method)
        if fit_or_none(plan) is None:
            rows.append([name, Cell(error_text(fit_error(plan)), len(FORECAST_HEADERS) - 1)])
            continue
        for row in plan.get("budgets") or []:
            rows.append(
                [
                    name,
                    flops(row.get("C")),
                    times(row.get("extrapolation")),
                    with_interval(row.get("N_opt"), (row.get("N_opt_lo"), row.get("N_opt_hi"))),
                    with_interval(row.get("D_opt"), (row.get("D_opt_lo"), row.get("D_opt_hi"))),
                    number(row.get("tokens_per_param")),
                    with_interval(row.get("loss"), (row.get("loss_lo"), row.get("loss_hi"))),
                ]
            )
    if not rows:
        return element("p", "No compute-optimal forecast: no fit succeeded.", class_="muted")
    return table(FORECAST_HEADERS, rows, caption=compute_convention_text(data.group), class_="forecasts")


def compute_convention_text(group: dict) -> str | None:
    """The group's ``C = k N D`` (k measured from its runs) and how the forecasts use it."""
    convention = group.get("compute_convention")
    if not isinstance(convention, dict) or not is_number(convention.get("k")):
        return None
    low, high = as_float(convention.get("k_min")), as_float(convention.get("k_max"))
    spread = f", {number(low)} to {number(high)} over runs" if high > low * (1 + 1e-6) else ""
    return (
        f"Compute: C = {number(convention['k'])} N D FLOPs ({convention.get('source', 'measured')}{spread}). "
        "The parametric law's N_opt and D_opt solve it; IsoFLOP and frontier D_opt are the runs' own tokens."
    )


# Forecast check --------------------------------------------------------------------------------------------------

FORECAST_CHECK_HEADERS = [
    "law",
    "run",
    "C",
    "N",
    "observed loss",
    "predicted loss [prediction interval]",
    "law's bootstrap interval",
    "relative error",
    "inside",
]


def forecast_check_tables(data: GroupData) -> Html:
    """Every law's forecast of every held-out run (loss), then the IsoFLOP N_opt forecast
    against the held-out budget's best observed size."""
    check = data.group.get("forecast_check") or {}
    laws = check.get("laws") or {}
    if not laws:
        return element(
            "p",
            "No held-out runs: the forecast is not checked beyond the fitted budgets "
            "(set holdout_budget = true in the study's [sweep] to train a budget 10x the largest).",
            class_="muted",
        )
    rows = []
    for method, law in laws.items():
        rows += _forecast_check_rows(METHOD_NAMES.get(method, method), law)
    caption = (
        f"Held-out {', '.join(flops(b) for b in check.get('held_out_budgets') or [])} "
        f"({times(check.get('factor'))} the largest fitted budget, {flops(check.get('largest_fitted_budget'))}), "
        "never seen by the fits. Prediction interval: the law's bootstrap interval widened by the fitted "
        "runs' own scatter around the law."
    )
    parts = [table(FORECAST_CHECK_HEADERS, rows, caption=caption, class_="forecast-check")]
    optimum = (laws.get("isoflop") or {}).get("optimum")
    if optimum:
        parts.append(_optimum_check_table(optimum))
    return join(parts)


def _forecast_check_rows(name: str, law: dict) -> list[list]:
    if fit_or_none(law) is None:
        return [[name, Cell(error_text(fit_error(law)), len(FORECAST_CHECK_HEADERS) - 1)]]
    rows = [
        [
            name,
            point.get("run_id") or MISSING,
            flops(point.get("C", point.get("budget"))),
            number(point.get("N")),
            number(point.get("observed"), 4),
            with_interval(point.get("predicted"), (point.get("predicted_lo"), point.get("predicted_hi")), 4),
            interval_text(point.get("law_lo"), point.get("law_hi")),
            percent(point.get("relative_error")),
            {True: "inside", False: "OUTSIDE"}.get(point.get("inside"), MISSING),
        ]
        for point in law.get("points") or []
    ]
    if law.get("note"):
        rows.append([name, Cell(element("span", law["note"], class_="muted"), len(FORECAST_CHECK_HEADERS) - 1)])
    if law.get("n_points"):
        summary = (
            f"mean |relative error| {percent(law.get('mean_abs_relative_error'))}, bias {percent(law.get('bias'))}, "
            f"{integer(law.get('n_outside'))} of {integer(law.get('n_points'))} outside"
        )
        rows.append([name, Cell(element("em", summary), len(FORECAST_CHECK_HEADERS) - 1)])
    return rows


def interval_text(low, high) -> str:
    return MISSING if not (is_number(low) and is_number(high)) else f"[{number(low, 4)}, {number(high, 4)}]"


def _optimum_check_table(optimum: list[dict]) -> Html:
    rows = [
        [
            flops(row.get("budget")),
            with_interval(row.get("N_opt_predicted"), (row.get("N_opt_lo"), row.get("N_opt_hi"))),
            f"{number(row.get('N_best_observed'))} (d_model {integer(row.get('d_model_best'))})",
            number(row.get("ratio")),
        ]
        for row in optimum
    ]
    headers = ["held-out budget", "IsoFLOP N_opt forecast [CI]", "best observed size", "forecast / observed"]
    caption = "IsoFLOP N_opt forecast against the held-out budget's lowest-loss model size (a ladder width)"
    return table(headers, rows, caption=caption, class_="forecast-check-optimum")


# Audit -----------------------------------------------------------------------------------------------------------

AUDIT_HEADERS = [
    "method",
    "held-out budget",
    "fitted below",
    "runs fitted / held out",
    "mean |rel. error|",
    "max |rel. error|",
    "bias",
    "coverage of the interval",
]


def audit_tables(data: GroupData) -> Html:
    """The audit summary (one row per method) and each method's held-out points."""
    rows, details = [], []
    for method in AUDIT_METHODS:
        audit = data.audit(method)
        if audit is None:
            continue
        rows.append(_audit_row(method, audit))
        if fit_or_none(audit) is not None:
            details.append(_audit_points(method, audit))
    if not rows:
        return element("p", "No extrapolation audit.", class_="muted")
    return join([table(AUDIT_HEADERS, rows, class_="audit"), *details])


def _audit_row(method: str, audit: dict) -> list:
    name = METHOD_NAMES[method]
    if fit_or_none(audit) is None:
        return [name, Cell(error_text(fit_error(audit)), len(AUDIT_HEADERS) - 1)]
    held = ", ".join(flops(c) for c in audit.get("held_out_budgets") or []) or MISSING
    level = percent(audit.get("ci_level"), 0)
    coverage = percent(audit.get("coverage"), 0)
    return [
        name,
        held,
        flops(audit.get("threshold_C")),
        f"{integer(audit.get('n_train'))} / {integer(audit.get('n_test'))}",
        percent(audit.get("mean_abs_relative_error")),
        percent(audit.get("max_abs_relative_error")),
        percent(audit.get("bias")),
        coverage if coverage == MISSING else f"{coverage} (of {level} intervals)",
    ]


def _audit_points(method: str, audit: dict) -> Html:
    """Observed against predicted loss at each held-out point (and, for IsoFLOP, N_opt)."""
    points = audit.get("points") or {}
    columns = [
        points.get(key) or []
        for key in ("C", "N", "observed", "predicted", "predicted_lo", "predicted_hi", "relative_error")
    ]
    rows = [
        [flops(C), number(N), number(observed, 4), with_interval(predicted, (low, high), 4), percent(error)]
        for C, N, observed, predicted, low, high, error in zip(*columns, strict=False)
    ]
    what = "loss at the compute-optimal size" if method == "isoflop" else "loss of each held-out run"
    caption = f"{METHOD_NAMES[method]} audit: {what}, observed vs predicted by the law fitted without it"
    parts = [table(["C", "N", "observed loss", "predicted loss [CI]", "relative error"], rows, caption=caption)]
    optimum = audit.get("optimum")
    if optimum:
        parts.append(_optimum_table(optimum))
    return join(parts)


def _optimum_table(optimum: dict) -> Html:
    columns = [optimum.get(key) or [] for key in ("C", "N_opt_observed", "N_opt_predicted", "log10_ratio")]
    rows = [
        [flops(C), number(observed), number(predicted), number(ratio)]
        for C, observed, predicted, ratio in zip(*columns, strict=False)
    ]
    headers = ["C", "N_opt observed", "N_opt predicted", "log10 predicted / observed"]
    return table(headers, rows, caption="IsoFLOP audit: the held-out budget's optimal model size")


# Runs ------------------------------------------------------------------------------------------------------------


def failed_runs_table(runs: list[dict]) -> Html:
    """Every failed run with its error message."""
    failed = [run for run in runs if run.get("status") == "failed"]
    if not failed:
        return element("p", "No run failed.", class_="muted")
    rows = [
        [
            run.get("run_id"),
            run.get("task"),
            run.get("tokenizer"),
            integer(run.get("d_model")),
            flops(run.get("budget")),
            element("pre", run.get("error") or "(no message)", class_="error-text"),
        ]
        for run in failed
    ]
    return table(["run", "task", "tokenizer", "d_model", "budget", "error"], rows, class_="failed")


RUN_COLUMNS = [
    ("run", "run_id", str),
    ("status", "status", str),
    ("task", "task", str),
    ("tokenizer", "tokenizer", str),
    ("seed", "seed", integer),
    ("d_model", "d_model", integer),
    ("layers", "n_layer", integer),
    ("budget (FLOPs)", "budget", number),
    ("N (parameters)", "N", number),
    ("D (tokens)", "D", number),
    ("C (FLOPs)", "C", number),
    ("validation loss", "loss", lambda v: number(v, 4)),
    ("train loss", "train_loss", lambda v: number(v, 4)),
    ("epochs", "epochs", number),
    ("wall time (s)", "wall_seconds", number),
]


def runs_table(runs: list[dict]) -> Html:
    """Every run of the study, one row each (plain, not sortable)."""
    columns = list(RUN_COLUMNS)
    if any("holdout" in run for run in runs):
        columns.append(("held out", "holdout", lambda v: "yes" if v else ""))
    rows = [[_cell(run.get(key), show) for _, key, show in columns] for run in runs]
    return table([header for header, _, _ in columns], rows, class_="runs")


def _cell(value, show) -> str:
    if value is None:
        return MISSING
    return show(value)


# Known floors ----------------------------------------------------------------------------------------------------

FLOOR_HEADERS = ["group", "known floor", "fitted E from", "E [CI]", "E - known floor", "floor inside the interval"]


def fitted_floors(group: dict) -> list[tuple[str, dict | None]]:
    """Every fitted E of a group, as (law, its fit dict with ``E`` and ``ci``, or None when not fitted)."""
    isoflop = fit_or_none(group.get("isoflop")) or {}
    return [
        ("parametric", fit_or_none(group.get("parametric"))),
        ("frontier", fit_or_none(group.get("frontier"))),
        ("IsoFLOP loss law", fit_or_none(isoflop.get("loss_law"))),
    ]


def known_floor_table(groups: list[GroupData]) -> Html | None:
    """The known (analytic) floor of each group beside every fitted E, with the difference;
    None when no group has a known floor recorded (studies prepared before floors existed)."""
    rows = []
    for data in groups:
        floor = data.group.get("known_floor")
        if not isinstance(floor, dict):
            continue
        if floor.get("loss") is None:
            rows.append([data.label, Cell(f"none: {floor.get('note', '')}", len(FLOOR_HEADERS) - 1)])
            continue
        shown = element("span", f"{number(floor['loss'], 4)} ({floor.get('kind')})", title=floor.get("note"))
        if is_number(floor.get("validation")):
            shown = join([shown, f"; validation frames {number(floor['validation'], 4)}"])
        for law, fit in fitted_floors(data.group):
            rows.append([data.label, shown, law, *_floor_comparison(fit, float(floor["loss"]))])
    return table(FLOOR_HEADERS, rows, class_="known-floors") if rows else None


def _floor_comparison(fit: dict | None, floor: float) -> list:
    """E [CI], E minus the floor, and whether the floor lies inside E's interval."""
    if fit is None or not is_number(fit.get("E")):
        return [MISSING, MISSING, MISSING]
    interval = (fit.get("ci") or {}).get("E")
    inside = MISSING
    if interval and all(is_number(bound) for bound in interval):
        inside = "yes" if interval[0] <= floor <= interval[1] else "no"
    if fit.get("fixed_E"):
        inside = "E held at it"
    return [fit_value(fit, None, "E"), f"{as_float(fit['E']) - floor:+.4f}", inside]


# Noise budget ----------------------------------------------------------------------------------------------------

NOISE_HEADERS = ["budget", "d_model", "seeds", "mean loss", "estimator SE", "seed SD", "SE / SD"]


def noise_budget_table(data: GroupData) -> Html:
    """Per IsoFLOP point: the validation estimator's standard error (episode-clustered)
    and the seed standard deviation of the final loss, with their ratio and a verdict
    against the target (estimator SE at most a quarter of the seed SD)."""
    budget = data.group.get("noise_budget")
    if fit_or_none(budget) is None:
        return element("p", f"No noise budget: {fit_error(budget, 'not measured')}", class_="muted")
    rows = [
        [
            flops(point.get("budget")),
            integer(point.get("d_model")),
            integer(point.get("seeds")),
            number(point.get("loss_mean"), 4),
            number(point.get("estimator_se"), 2),
            number(point.get("seed_sd"), 2),
            number(point.get("ratio"), 2),
        ]
        for point in budget.get("points") or []
    ]
    return join([element("p", _noise_verdict(budget)), table(NOISE_HEADERS, rows, class_="noise")])


def _noise_verdict(budget: dict) -> str:
    se, sd, ratio = (as_float(budget.get(key)) for key in ("estimator_se_median", "seed_sd_median", "ratio"))
    target = as_float(budget.get("target_ratio"))
    text = f"Median estimator SE {number(se, 2)} nats, median seed SD {number(sd, 2)} nats"
    if not is_number(ratio):
        why = "fewer than 2 seeds per point" if not is_number(sd) else "no run measured its standard error"
        return f"{text} (no ratio: {why})."
    verdict = "within" if ratio <= target else "above"
    advice = (
        ""
        if ratio <= target
        else "; more validation episodes lower it (more windows per episode hardly do), and as every run is "
        "measured on the same windows, much of it moves all losses together rather than apart"
    )
    return f"{text}: ratio {number(ratio, 2)}, {verdict} the target of {number(target, 2)}{advice}."


# World models against predicting no change ------------------------------------------------------------------------


def persistence_box(group: dict) -> Html | None:
    """A red box at the top of a wm group's section when some of its world models predict worse
    than the persistence baseline (nothing moves); None when none does or none was evaluated."""
    section = group.get("open_loop") or {}
    losing = [run for run in section.get("runs") or [] if run.get("worse_than_persistence_at")]
    if not losing:
        return None
    heading = element(
        "strong",
        f"{len(losing)} of {section.get('evaluated')} world model(s) evaluated open-loop are worse than "
        "predicting that nothing moves.",
    )
    items = [
        element("li", f"{run.get('run_id')} (d_model {run.get('d_model')}): {run.get('persistence_warning')}")
        for run in losing
    ]
    return element("div", heading, element("ul", *items), class_="verdict-box verdict-fails")


def open_loop_table(group: dict) -> Html:
    """Each evaluated world model's normalised open-loop error by horizon beside the persistence
    baseline's (predict s[t+h] = s[t]), with whether the model beats it."""
    runs = (group.get("open_loop") or {}).get("runs") or []
    if not runs:
        return element(
            "p",
            "No world model was evaluated open-loop (set [evaluate] world_models in the study file).",
            class_="muted",
        )
    headers = [
        "run",
        "d_model",
        "budget (FLOPs)",
        "validation loss",
        "horizon",
        "MSE (normalised)",
        "persistence MSE (normalised)",
        "beats persistence",
    ]
    rows = [
        [
            run.get("run_id"),
            integer(run.get("d_model")),
            flops(run.get("budget")),
            number(run.get("loss"), 4),
            integer(error.get("horizon")),
            number(error.get("mse_normalised"), 3),
            number(error.get("persistence_mse_normalised"), 3),
            element("span", "no", class_="error")
            if error.get("horizon") in run.get("worse_than_persistence_at", [])
            else "yes",
        ]
        for run in runs
        for error in run.get("horizons") or []
    ]
    caption = (
        "Open-loop prediction on validation episodes; normalised: in units of each state dimension's standard "
        "deviation. Persistence predicts that the state at t+h is the state at t."
    )
    return table(headers, rows, caption=caption, class_="open-loop")
