"""Reports: an analysis dict in, a self-contained HTML page and a JSON file out.

    from roboscale.report import write_report

    html_path = write_report(analysis, "runs/study/report")   # report.html + report.json

The page opens with no network: inline CSS, figures as inline SVG made by
matplotlib (Agg/SVG, no GUI), no script. Only numpy, matplotlib and the standard
library are used: a report never imports training code.

The analysis dict (JSON-ready: plain numbers, None for a missing one)::

    title: str
    study: {name, path, dataset, roboscale_version, command, settings: dict}
    runs: [{run_id, status ("finished" | "failed" | "planned" | "running"), task, tokenizer, seed,
            d_model, n_layer, budget (target FLOPs), N (parameters), D (tokens), C (FLOPs),
            loss (final validation loss), train_loss, epochs, error, wall_seconds, [holdout: bool]}]
    curves: [{run_id, step, tokens, flops, val_loss, train_loss}]
    groups: [{task, tokenizer, label, n_runs, n_failed,
              isoflop, frontier, parametric: the fit's to_dict() or {"error": why},
              compute_optimal: {method: ComputeOptimal.to_dict()},
              audit: {"isoflop" | "parametric": ExtrapolationAudit.to_dict() or {"error": why}},
              recommendation: {budget, N, D, d_model, n_layer, method, reason} or None,
              forecast_check: {held_out_budgets, largest_fitted_budget, factor, n_held_out,
                               laws: {law: {points, n_points, mean_abs_relative_error, bias, n_outside,
                                            ci_level, [optimum], [note]} or {"error": why}}}
                  (see roboscale.fit.forecast_check),
              regime: {warnings: [{kind, message, fix}], frontier, local_slopes, profiles, curvature, curves}
                  (see roboscale.fit.regime),
              verdict: {status: "holds" | "fails" | "unchecked", reasons: [str], checked_laws: [str]}}]
    published: [{source, setting, a_low, a_high, note}]
    warnings: [str]
    data_axes: (optional) laws along the data axes and which data to collect next, shown as the
               "Data" section (see roboscale.study.data_analysis for its keys; figures
               ``fig-data-AXIS[-METRIC]``, see roboscale.report.figures.data_axes)

A group's runs are the runs with its task and tokenizer; a run belongs to an
IsoFLOP profile when its ``budget`` equals the profile's ``C`` (relative
tolerance 1e-6). Figures have ids ``fig-KIND-SLUG`` (see
:data:`roboscale.report.figures.FIGURE_KINDS`), SLUG being "task-tokenizer" in
lowercase letters and digits ("bc-uniform256").
"""

from roboscale.report.analysis import group_slugs
from roboscale.report.figures import FIGURE_KINDS
from roboscale.report.page import render_html
from roboscale.report.write import write_report

__all__ = ["FIGURE_KINDS", "group_slugs", "render_html", "write_report"]
