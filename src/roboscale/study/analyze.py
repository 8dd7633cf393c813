"""From the run store to every number of the report: fits per task and tokenizer.

For each (task, tokenizer) group of finished runs: the IsoFLOP fit (budgets as
planned), the parametric law, the frontier of the learning curves, the
compute-optimal allocation 10x-1000x beyond the study, the extrapolation audit
(refit without the largest budget, predict it) and the recommended next run. A fit
that cannot be made is reported with its reason instead of stopping the analysis.
Only run records are read here: no training code.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from roboscale import __version__
from roboscale.errors import result_or_reason
from roboscale.fit import audit_extrapolation, compute_optimal, fit_frontier, fit_isoflop, fit_parametric, load_runs
from roboscale.fit.bootstrap import to_jsonable
from roboscale.fit.forecast_check import forecast_check, verdict
from roboscale.fit.noise import noise_budget
from roboscale.fit.regime import detect_regime
from roboscale.study.data_analysis import data_axes_analysis
from roboscale.study.store import RUN_COLUMNS
from roboscale.study.success import success_analysis
from roboscale.study.world_models import open_loop_analysis

PUBLISHED = [
    {
        "source": "Hoffmann et al. 2022",
        "setting": "language models, approaches 1-3",
        "a_low": 0.46,
        "a_high": 0.50,
        "note": "N_opt exponent across their three approaches",
    },
    {
        "source": "Pearce et al. 2024",
        "setting": "world model, 256 tokens per image",
        "a_low": 0.49,
        "a_high": 0.49,
        "note": "as summarised secondhand; check against the paper",
    },
    {
        "source": "Pearce et al. 2024",
        "setting": "behaviour cloning, token-based",
        "a_low": 0.32,
        "a_high": 0.32,
        "note": "as summarised secondhand; check against the paper",
    },
    {
        "source": "Tuyls et al. 2023 (refit here)",
        "setting": "Atari behaviour cloning, 8 games",
        "a_low": 0.43,
        "a_high": 0.77,
        "note": "roboscale's IsoFLOP fit of their released runs, range over games",
    },
]

FORECAST_FACTORS = (10.0, 100.0, 1000.0)


def analyze(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    *,
    study: dict,
    ladder: dict[tuple, dict[int, int]],
    n_layers: dict[int, int] | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    warnings: list[str] | None = None,
    evaluations: pd.DataFrame | None = None,
    known_floors: dict[tuple[str, str], dict] | None = None,
    fixed_E: dict[tuple[str, str], float] | None = None,
    open_loop: dict[str, dict] | None = None,
    data_reference: str | None = None,
) -> dict:
    """The report's analysis dict (see roboscale.report) from the store's runs and curves
    (and closed-loop ``evaluations`` of bc runs, when the study made them). ``ladder``:
    parameters of every ladder width by (task, tokenizer); ``n_layers``: layers of every
    width (see :class:`roboscale.study.store.PlanRecord`); ``known_floors``: each group's
    known floor (roboscale.data.floors); ``fixed_E``: groups whose parametric E is held fixed;
    ``open_loop``: open-loop evaluations of wm runs by run_id (see roboscale.study.world_models);
    ``data_reference``: the primary source of a study with data axes (its runs, those with an
    ``axis``, are analysed by :func:`roboscale.study.data_analysis.data_axes_analysis` into
    "data_axes" and left out of the IsoFLOP groups)."""
    groups = []
    isoflop_runs = runs[runs["axis"].fillna("") == ""] if "axis" in runs.columns else runs
    for (task, tokenizer), part in isoflop_runs.groupby(["task", "tokenizer"], sort=True):
        finished = part[(part["status"] == "finished") & ~part["holdout"].astype(bool)]
        group_curves = curves[curves["run_id"].isin(finished["run_id"])]
        sizes = ladder.get((task, tokenizer), {})
        fixed = (fixed_E or {}).get((task, tokenizer))
        held_out = part[(part["status"] == "finished") & part["holdout"].astype(bool)]
        held_curves = curves[curves["run_id"].isin(held_out["run_id"])]
        group = _group(
            task, tokenizer, part, finished, group_curves, (sizes, n_layers or {}), bootstrap, seed, held_curves, fixed
        )
        if known_floors and (task, tokenizer) in known_floors:
            group["known_floor"] = known_floors[(task, tokenizer)]
        group["verdict"] = verdict(group)
        if evaluations is not None and len(evaluations) and task == "bc":
            group["success"] = success_analysis(finished, evaluations, bootstrap=bootstrap, seed=seed)
        if open_loop and task == "wm":
            group["open_loop"] = open_loop_analysis(finished, open_loop, group["label"])
        groups.append(group)
    warnings = list(warnings or []) + _open_loop_warnings(groups) + _flat_warnings(groups) + _regime_warnings(groups)
    data_axes = (
        data_axes_analysis(
            runs, reference=data_reference, bootstrap=bootstrap, seed=seed, floors=_data_floors(runs, fixed_E)
        )
        if data_reference
        else None
    )
    return to_jsonable(
        {
            "title": f"Scaling study: {study.get('name', 'study')}",
            "study": {**study, "roboscale_version": __version__},
            "runs": [_run_row(row) for row in runs.to_dict(orient="records")],
            "curves": curves[["run_id", "step", "tokens", "flops", "val_loss", "train_loss"]].to_dict(orient="records"),
            "groups": groups,
            "published": PUBLISHED,
            "warnings": warnings,
            **({"data_axes": data_axes} if data_axes else {}),
        }
    )


def _data_floors(runs: pd.DataFrame, fixed_E: dict[tuple[str, str], float] | None) -> dict[str, float]:
    """The known floor of a data-axes study's validation loss, when ``[fit] fixed_e`` holds E
    at it and the study has one task and tokenizer (every level is scored on the reference's
    validation split, so one floor serves every level)."""
    axis_runs = runs[runs["axis"].fillna("") != ""] if "axis" in runs.columns else runs.iloc[:0]
    groups = set(zip(axis_runs["task"], axis_runs["tokenizer"]))
    if len(groups) != 1 or not fixed_E or next(iter(groups)) not in fixed_E:
        return {}
    return {"loss": float(fixed_E[next(iter(groups))])}


def _open_loop_warnings(groups: list[dict]) -> list[str]:
    """One warning per wm group with world models worse than predicting no change."""
    return [group["open_loop"]["warning"] for group in groups if (group.get("open_loop") or {}).get("warning")]


def _flat_warnings(groups: list[dict]) -> list[str]:
    """One warning per IsoFLOP curve too flat to locate its minimum."""
    out = []
    for group in groups:
        for profile in (group.get("isoflop") or {}).get("profiles") or []:
            if not (profile.get("usable") and profile.get("flat")):
                continue
            separation = profile.get("separation")
            if profile.get("seeds", 1) > 1 and separation is not None and math.isfinite(separation):
                why = (
                    f"its lowest mean is {separation:.1f} standard errors below the higher neighbour "
                    f"({profile['seeds']} seeds per size)"
                )
            else:
                why = "its curvature or bootstrap minima do not resolve the minimum"
            out.append(
                f"{group['label']}: the IsoFLOP curve at {profile['C']:.3g} FLOPs is too flat to locate its "
                f"minimum ({why}); more seeds or sizes further from the minimum would pin it down"
            )
    return out


def _run_row(row: dict) -> dict:
    """A run as the report lists it: the run store's columns without its bookkeeping."""
    out = {key: row.get(key) for key in RUN_COLUMNS if key not in ("holdout", "planned_flops", "attempts")}
    out["holdout"] = bool(row.get("holdout"))
    return out


def _group(task, tokenizer, part, finished, curves, ladder, bootstrap, seed, held_curves, fixed_E=None) -> dict:
    """One (task, tokenizer) group's fits; ``ladder``: (parameters, layers) of each width;
    ``held_curves``: learning curves of its held-out runs (for the regime checks);
    ``fixed_E``: the parametric law's E, held fixed (None: fitted)."""
    group = {
        "task": task,
        "tokenizer": tokenizer,
        "label": f"{task} · {tokenizer}",
        "n_runs": len(part),
        "n_failed": int((part["status"] == "failed").sum()),
        "compute_optimal": {},
        "audit": {},
        "recommendation": None,
    }
    table = finished[["run_id", "N", "D", "C", "loss", "budget", "seed", "d_model"]]
    convention = result_or_reason(lambda: load_runs(table).compute_convention)  # k of C = k N D, from the runs
    group["compute_convention"] = convention if isinstance(convention, dict) else convention.to_dict()
    fits = {
        "isoflop": lambda: fit_isoflop(load_runs(table), budget="budget", bootstrap=bootstrap, seed=seed),
        "parametric": lambda: fit_parametric(load_runs(table), bootstrap=bootstrap, seed=seed, fixed_E=fixed_E),
        "frontier": lambda: fit_frontier(_curve_table(curves, finished), bootstrap=bootstrap, seed=seed),
    }
    fitted = {}
    for name, make in fits.items():
        fitted[name] = result_or_reason(make)
        group[name] = fitted[name] if isinstance(fitted[name], dict) else fitted[name].to_dict()
    largest = float(table["budget"].max()) if len(table) else float("nan")
    for name, fit in fitted.items():
        if not isinstance(fit, dict):
            plan = result_or_reason(lambda fit=fit: compute_optimal(fit, [largest * f for f in FORECAST_FACTORS]))
            group["compute_optimal"][name] = plan if isinstance(plan, dict) else plan.to_dict()
    for method in ("isoflop", "parametric"):
        audit = result_or_reason(
            lambda m=method: audit_extrapolation(
                load_runs(table), m, bootstrap=min(bootstrap, 200), seed=seed, budget_tolerance=0.01
            )
        )
        group["audit"][method] = audit if isinstance(audit, dict) else audit.to_dict()
    group["recommendation"] = _recommend(fitted, largest, *ladder)
    group.update(_forecast_checks(group, fitted, part, curves, held_curves, largest))
    group["noise_budget"] = result_or_reason(lambda: noise_budget(finished))
    return group


def _forecast_checks(group: dict, fitted: dict, part, curves, held_curves, largest: float) -> dict:
    """The group's "forecast_check" (fitted laws vs held-out runs), "regime" (are the runs in a
    power-law regime; see roboscale.fit.regime); the verdict is drawn from them in :func:`analyze`."""
    finished = part[part["status"] == "finished"]
    held_out = finished[finished["holdout"].astype(bool)]
    check = forecast_check(fitted, held_out[["run_id", "N", "D", "C", "loss", "budget", "d_model"]], largest)
    both = pd.concat([curves.assign(holdout=False), held_curves.assign(holdout=True)])
    both = both.rename(columns={"run_id": "run", "flops": "C", "val_loss": "loss"})[["run", "C", "loss", "holdout"]]
    fitted_runs = finished[~finished["holdout"].astype(bool)][["N", "loss", "budget"]].dropna()
    profiles = (group.get("isoflop") or {}).get("profiles")
    smallest = float(fitted_runs["budget"].min()) if len(fitted_runs) else None
    regime = detect_regime(both.dropna(), fitted_runs, group.get("frontier"), profiles, smallest)
    return {"forecast_check": check, "regime": regime}


def _regime_warnings(groups: list[dict]) -> list[str]:
    """One report warning per regime warning of a group, with what would fix it."""
    return [
        f"{group['label']}: not yet in a power-law regime: {warning['message']}; to fix: {warning['fix']}"
        for group in groups
        for warning in (group.get("regime") or {}).get("warnings") or []
    ]


def _curve_table(curves: pd.DataFrame, finished: pd.DataFrame) -> pd.DataFrame:
    sizes = finished.set_index("run_id")["N"]
    table = curves.rename(columns={"flops": "C", "tokens": "D", "val_loss": "loss"})[["run_id", "C", "D", "loss"]]
    table = table.assign(N=table["run_id"].map(sizes), run=table["run_id"])
    return table.drop(columns="run_id").dropna()


def _recommend(
    fitted: dict, largest: float, sizes: dict[int, int], n_layers: dict[int, int] | None = None
) -> dict | None:
    """The next run to train: the compute-optimal size at 10x the largest budget,
    snapped to the nearest ladder width (from the IsoFLOP law, else the parametric
    or frontier one). ``sizes``: parameters of each ladder width; ``n_layers``: its layers."""
    if not sizes or not math.isfinite(largest):
        return None
    for method in ("isoflop", "parametric", "frontier"):
        fit = fitted.get(method)
        if fit is None or isinstance(fit, dict):
            continue
        budget = 10.0 * largest
        N, D, _ = (float(np.asarray(v).reshape(-1)[0]) for v in fit.allocate(np.array([budget])))
        if not (math.isfinite(N) and math.isfinite(D) and N > 0 and D > 0):
            continue  # a non-physical law (e.g. loss rising with size) has no optimum
        width = min(sizes, key=lambda w: abs(math.log(sizes[w] / N)))
        n_layer = (n_layers or {}).get(width)
        beyond = " (beyond the ladder: add wider models)" if N > 2 * max(sizes.values()) else ""
        return {
            "budget": budget,
            "N": N,
            "D": D,
            "d_model": width,
            "n_layer": n_layer,
            "method": method,
            "reason": f"{method} law: N_opt = {N:.3g} parameters and D_opt = {D:.3g} tokens at 10x the largest "
            f"budget; nearest ladder width {width} ({sizes[width]:,} parameters){beyond}",
        }
    return None
