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
    return [
        element("a", data.label, href=f"#group-{data.slug}"),
        _run_counts(data.group),
        fit_value(isoflop, iso_error, "a"),
        fit_value(isoflop, iso_error, "b", show_error=False),
        fit_value(frontier, frontier_error, "a"),
        fit_value(parametric, parametric_error, "alpha"),
        fit_value(parametric, parametric_error, "beta", show_error=False),
        fit_value(parametric, parametric_error, "E", show_error=False),
        _audit_errors(data),
        recommendation_summary(data.group.get("recommendation")),
    ]


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
    return table(FORECAST_HEADERS, rows, class_="forecasts")


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
