"""The data axes of a study: laws along amount, repetition, diversity, quality and mixtures.

Input: the runs table with the data-axis columns (one row per run): ``axis`` ("" for
IsoFLOP runs, else "amount", "amount+quality", "mixture", ...), ``d_model`` (the fixed
model width), ``episodes``, ``unique_episodes``, ``repetitions``, ``train_tasks``,
``noise``, ``r_<source>``, ``loss`` (primary validation), ``loss_<source>``,
``heldout_loss`` and, when evaluated, ``success``. Output: the analysis dict's
``"data_axes"`` entry, JSON-ready::

    reference, axes (present, in AXES order), widths, n_runs, bootstrap, ci_level, next_episodes
    laws: [{axis, x, y, width, slice: {column: value}, primary, points: {x, y},
            fit (power law without offset, y = A x^-alpha: PowerLawFit.to_dict() or {"error"}),
            saturating (y = E + A x^-alpha for amount's loss, the same or {"error"}; else None),
            curve: {x, y, low, high}}]
    exponents: [{axis, x, y, width, slice, primary, alpha, alpha_ci, saturating_alpha, saturating_alpha_ci}]
    repetition: [{width, unique_episodes, slice, rows: [{repetitions, loss, n_runs, fresh_loss,
                  effective_episodes, repeat_worth}]}]
    quality: [{width, clean_noise, rows: [{noise, episodes, loss, n_runs, clean_episodes,
               clean_episodes_ci, worth, worth_ci}]}]
    mixture: [{width, sources, laws: [{source, loss_column, fit, points: {r, loss}, curve: {r, loss}}],
               optimal: {proportions, ci, loss, loss_ci} or {"error"}}]
    marginal: [{width, operating_point, next_episodes, options: [...]}]   (see roboscale.study.data_value)
    recommendation: {width, choice, ranked, sentence, caveat, metric_note} or None

Every law is fitted per width and per "slice" (the levels of the axes crossed with it,
e.g. each noise level of an amount x quality study); the primary slice is the one at
the operating point (see :func:`operating_levels`). Only run records are read here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError, result_or_reason
from roboscale.fit.bootstrap import check_bootstrap_options, percentile_interval, to_jsonable
from roboscale.fit.effective_data import invert_amount_law
from roboscale.fit.mixture import fit_mixture_law, optimal_mixture
from roboscale.fit.power_law import PowerLawFit, fit_power_law

AXES = ("amount", "repetition", "diversity", "quality", "mixture")
AXIS_ALIASES = {"tasks": "diversity", "data": "amount"}
"""Other names a study may write in the ``axis`` column."""

LEVEL_COLUMNS = {"amount": "episodes", "repetition": "repetitions", "diversity": "train_tasks", "quality": "noise"}
"""The runs-table column that holds each axis's level."""

LAW_METRICS = {"amount": ("loss", "success"), "diversity": ("heldout_loss", "loss")}
"""Per law axis, the metrics a power law is fitted to (the first one is the axis's headline)."""

SATURATING = {("amount", "loss")}
"""The laws also fitted with a floor, y = E + A x^-alpha (the others only as y = A x^-alpha)."""

MIN_LEVELS = 3
"""A law needs at least this many distinct levels."""

CI_LEVEL = 0.95
CURVE_POINTS = 60
CURVE_EXTEND = 2.0
"""Each law's curve is drawn from the smallest level to this factor beyond the largest."""

NEXT_EPISODES = 1000
"""The marginal value compares ways of spending this many more episodes."""


def axes_of(label) -> tuple[str, ...]:
    """The axes in an ``axis`` label: "amount+quality" -> ("amount", "quality"); "" -> ()."""
    if not isinstance(label, str) or not label.strip():
        return ()
    return tuple(AXIS_ALIASES.get(part.strip(), part.strip()) for part in label.split("+") if part.strip())


def data_axes_analysis(
    runs: pd.DataFrame, *, reference: str, bootstrap: int, seed: int, floors: dict[str, float] | None = None
) -> dict | None:
    """The study's "data_axes" analysis (shape in the module docstring), or None when no
    finished run has an axis. ``reference``: the primary source's name; ``bootstrap``:
    resamples for each law's interval (0: none); ``seed``: their seed; ``floors``: metric ->
    its known irreducible value (e.g. {"loss": 3.26} nats for injected action noise), held as
    E of that metric's laws: ``y = E + A x^-alpha`` fitted to ``y - E`` in log-log space."""
    from roboscale.study.data_value import marginal_values, recommend

    check_bootstrap_options(bootstrap, CI_LEVEL, seed)
    if not isinstance(reference, str) or not reference:
        raise BadInputError(f"reference={reference!r}: name the primary source, e.g. reference='expert'")
    table = axis_runs(runs)
    if table is None:
        return None
    present = [axis for axis in AXES if table["_axes"].map(lambda axes, a=axis: a in axes).any()]
    _check_columns(table, present)
    operating = operating_levels(table)
    fitted = [
        law
        for axis in present
        if axis in LAW_METRICS
        for law in axis_laws(table, axis, operating, bootstrap=bootstrap, seed=seed, floors=floors or {})
    ]
    marginal = marginal_values(fitted, operating, next_episodes=NEXT_EPISODES)
    result = {
        "reference": reference,
        "axes": present,
        "widths": sorted(int(w) for w in table["d_model"].unique()),
        "n_runs": len(table),
        "bootstrap": bootstrap,
        "ci_level": CI_LEVEL,
        "next_episodes": NEXT_EPISODES,
        "known_floors": dict(floors or {}),
        "laws": [law.entry for law in fitted],
        "exponents": [exponent_row(law) for law in fitted if law.fit is not None],
        "repetition": repetition_tables(table, fitted) if "repetition" in present else [],
        "quality": quality_worth(table, fitted) if "quality" in present else [],
        "mixture": mixture_laws(table, reference, bootstrap=bootstrap, seed=seed) if "mixture" in present else [],
        "marginal": marginal,
        "recommendation": recommend(marginal),
    }
    return to_jsonable(result)


def axis_runs(runs: pd.DataFrame) -> pd.DataFrame | None:
    """Finished runs with an axis and a finite loss, with their axes as tuples in ``_axes``; None if none."""
    if runs is None or "axis" not in runs.columns or len(runs) == 0:
        return None
    table = runs.copy()
    if "status" in table.columns:
        table = table[table["status"] == "finished"]
    table["_axes"] = pd.Series([axes_of(label) for label in table["axis"]], index=table.index, dtype=object)
    has_axis = np.array([bool(axes) for axes in table["_axes"]], dtype=bool)
    table = table[has_axis & np.isfinite(pd.to_numeric(table["loss"], errors="coerce").to_numpy(float))]
    if len(table) == 0:
        return None
    if "d_model" not in table.columns:
        raise BadInputError("the runs table has no d_model column: data-axis runs need their model width")
    return table.reset_index(drop=True)


def _check_columns(table: pd.DataFrame, present: list[str]) -> None:
    """Each axis present needs its level column (and repetition its unique_episodes)."""
    needed = {axis: [LEVEL_COLUMNS[axis]] for axis in present if axis in LEVEL_COLUMNS}
    if "repetition" in present:
        needed["repetition"].append("unique_episodes")
    if "diversity" in present:
        needed["diversity"].append("heldout_loss")
    for axis, columns in needed.items():
        for column in columns:
            if column not in table.columns:
                raise BadInputError(
                    f"runs on the {axis} axis but the runs table has no {column} column: "
                    "export the runs with `roboscale runs export` from a study with data axes"
                )


def runs_on(table: pd.DataFrame, axis: str) -> pd.DataFrame:
    """The runs whose level varies along ``axis``."""
    return table[table["_axes"].map(lambda axes: axis in axes)]


def operating_levels(table: pd.DataFrame) -> dict[str, float]:
    """The operating point: the largest level of every axis (the most episodes and training
    tasks, the noisiest data: is cleaning it up worth more?), at one epoch (the fewest repetitions)."""
    levels: dict[str, float] = {}
    for column, pick in (("episodes", np.nanmax), ("train_tasks", np.nanmax), ("noise", np.nanmax)):
        if column in table.columns and np.isfinite(pd.to_numeric(table[column], errors="coerce")).any():
            levels[column] = float(pick(pd.to_numeric(table[column], errors="coerce")))
    if "repetitions" in table.columns and np.isfinite(pd.to_numeric(table["repetitions"], errors="coerce")).any():
        levels["repetitions"] = float(np.nanmin(pd.to_numeric(table["repetitions"], errors="coerce")))
    return levels


@dataclass(frozen=True)
class AxisLaw:
    """One fitted law of the data axes with the fit object (for predictions) and its JSON entry."""

    axis: str
    y: str
    width: int
    slice: dict
    primary: bool
    fit: PowerLawFit | None
    entry: dict
    runs: pd.DataFrame


def slice_columns(part: pd.DataFrame, axis: str) -> list[str]:
    """The level columns of the axes crossed with ``axis`` in these runs."""
    crossed = {other for axes in part["_axes"] for other in axes if other != axis and other in LEVEL_COLUMNS}
    return sorted(LEVEL_COLUMNS[other] for other in crossed)


def axis_laws(
    table: pd.DataFrame, axis: str, operating: dict, *, bootstrap: int, seed: int, floors: dict[str, float]
) -> list[AxisLaw]:
    """Every law of ``axis``: per metric present, width and slice of the crossed axes."""
    part = runs_on(table, axis)
    columns = slice_columns(part, axis)
    laws = []
    for metric in LAW_METRICS[axis]:
        if metric not in part.columns or not np.isfinite(pd.to_numeric(part[metric], errors="coerce")).any():
            continue
        for keys, runs in part.groupby(["d_model", *columns], sort=True, dropna=False):
            keys = keys if isinstance(keys, tuple) else (keys,)
            width, slice_ = int(keys[0]), {c: float(v) for c, v in zip(columns, keys[1:])}
            primary = all(np.isclose(v, operating.get(c, v)) for c, v in slice_.items())
            laws.append(_fit_law(axis, metric, width, slice_, primary, runs, bootstrap, seed, floors.get(metric)))
    return laws


def _fit_law(axis, metric, width, slice_, primary, runs, bootstrap, seed, floor=None) -> AxisLaw:
    """The power law of ``metric`` against the axis's level over ``runs`` (one width, one
    slice); with a known ``floor``, ``metric - floor`` in log-log space."""
    x_name = LEVEL_COLUMNS[axis]
    valid = runs[np.isfinite(pd.to_numeric(runs[metric], errors="coerce"))]
    x, y = valid[x_name].to_numpy(float), valid[metric].to_numpy(float)
    complement = 1.0 if metric == "success" else None
    levels = np.unique(x).size
    if levels < MIN_LEVELS:
        fit = {"error": f"{levels} levels of {x_name}: a law needs at least {MIN_LEVELS}"}
        saturating = fit if (axis, metric) in SATURATING else None
    else:

        def make(offset: bool, known_floor: float | None = None) -> Callable:
            return lambda: fit_power_law(
                x,
                y,
                offset=offset,
                complement=complement,
                bootstrap=bootstrap,
                seed=seed,
                x_name=x_name,
                y_name=metric,
                known_floor=known_floor,
            )

        fit = result_or_reason(make(False, floor))
        saturating = result_or_reason(make(True)) if (axis, metric) in SATURATING else None
    fitted = fit if isinstance(fit, PowerLawFit) else None
    entry = {
        "axis": axis,
        "x": x_name,
        "y": metric,
        "width": width,
        "slice": slice_,
        "primary": primary,
        "points": {"x": x.tolist(), "y": y.tolist()},
        "fit": fitted.to_dict() if fitted else fit,
        "saturating": saturating.to_dict() if isinstance(saturating, PowerLawFit) else saturating,
        "curve": law_curve(fitted, x) if fitted else None,
    }
    return AxisLaw(axis, metric, width, slice_, primary, fitted, entry, valid)


def law_curve(fit: PowerLawFit, x: np.ndarray) -> dict:
    """The law on a log grid from the smallest level to CURVE_EXTEND x the largest,
    with its bootstrap band (``low``/``high``: None without resamples)."""
    grid = np.geomspace(float(np.min(x)), CURVE_EXTEND * float(np.max(x)), CURVE_POINTS)
    samples = fit.predict_samples(grid)
    band = [percentile_interval(samples[:, i], fit.ci_level) for i in range(len(grid))] if samples is not None else []
    return {
        "x": grid.tolist(),
        "y": np.asarray(fit.predict(grid), dtype=float).tolist(),
        "low": [low for low, _ in band] or None,
        "high": [high for _, high in band] or None,
    }


def exponent_row(law: AxisLaw) -> dict:
    """One row of the exponents table: the law's alpha (and the saturating law's) with intervals."""
    saturating = law.entry["saturating"] or {}  # None (not fitted) or {"error": ...} give no numbers
    return {
        "axis": law.axis,
        "x": LEVEL_COLUMNS[law.axis],
        "y": law.y,
        "width": law.width,
        "slice": law.slice,
        "primary": law.primary,
        "alpha": law.fit.alpha,
        "alpha_ci": law.fit.ci.get("alpha"),
        "n_points": law.fit.n_points,
        "saturating_alpha": saturating.get("alpha"),
        "saturating_alpha_ci": (saturating.get("ci") or {}).get("alpha"),
        "saturating_E": saturating.get("E"),
    }


def find_law(laws: list[AxisLaw], axis: str, metric: str, width: int, **levels: float) -> AxisLaw | None:
    """The fitted law of ``axis``/``metric`` at ``width`` whose slice matches ``levels``
    (columns a slice does not have are ignored); with no ``levels``, the primary one."""
    for law in laws:
        if law.fit is None or (law.axis, law.y, law.width) != (axis, metric, width):
            continue
        if not levels and law.primary:
            return law
        if levels and all(np.isclose(law.slice.get(c, v), v) for c, v in levels.items()):
            return law
    return None


def equivalent_episodes(params: np.ndarray, loss) -> np.ndarray:
    """Episodes of the law's data that reach ``loss``: the amount law ``E + A x^-alpha``
    inverted (:func:`roboscale.fit.effective_data.invert_amount_law`), row by row of
    ``params`` (rows of (E, A, alpha)); NaN where the law never gets that low."""
    params = np.atleast_2d(np.asarray(params, dtype=float))
    losses = np.broadcast_to(np.asarray(loss, dtype=float), (len(params),))[:, None]
    episodes = invert_amount_law(params, losses)[:, 0]
    return np.where((params[:, 2] > 0) & np.isfinite(episodes), episodes, np.nan)


def law_params(fit: PowerLawFit) -> tuple[np.ndarray, np.ndarray | None]:
    """(1, 3) point estimate and (resamples, 3) bootstrap rows of (E, A, alpha)."""
    point = np.array([[fit.E, fit.A, fit.alpha]])
    samples = fit.samples if fit.samples is not None and len(fit.samples) else None
    return point, samples


def equivalent_with_interval(fit: PowerLawFit, loss: float) -> tuple[float, tuple[float, float] | None]:
    """Episodes of ``fit``'s data that reach ``loss``, with a bootstrap interval."""
    point, samples = law_params(fit)
    value = float(equivalent_episodes(point, loss)[0])
    ci = percentile_interval(equivalent_episodes(samples, loss), fit.ci_level) if samples is not None else None
    return value, ci


def repetition_tables(table: pd.DataFrame, laws: list[AxisLaw]) -> list[dict]:
    """Loss against epochs at fixed unique episodes, per width and slice; with an amount law,
    each beside fresh data of the same size (Muennighoff et al. 2023: is 4 epochs as good as new data?)."""
    part = runs_on(table, "repetition")
    columns = [c for c in slice_columns(part, "repetition") if c != "episodes"]
    out = []
    for keys, runs in part.groupby(["d_model", "unique_episodes", *columns], sort=True, dropna=False):
        width, unique, slice_ = int(keys[0]), float(keys[1]), {c: float(v) for c, v in zip(columns, keys[2:])}
        noise = runs["noise"].dropna() if "noise" in runs.columns else pd.Series(dtype=float)
        # Fresh data is read off the amount law at the same noise as these runs' data.
        law = find_law(laws, "amount", "loss", width, **({"noise": float(noise.iloc[0])} if len(noise) else {}))
        rows = [_repetition_row(float(r), group, unique, law) for r, group in runs.groupby("repetitions")]
        out.append({"width": width, "unique_episodes": unique, "slice": slice_, "rows": rows})
    return out


def _repetition_row(repetitions: float, runs: pd.DataFrame, unique: float, law: AxisLaw | None) -> dict:
    loss = float(runs["loss"].mean())
    row = {"repetitions": repetitions, "loss": loss, "n_runs": len(runs), "fresh_loss": None}
    row.update(effective_episodes=None, repeat_worth=None)
    if law is not None:
        row["fresh_loss"] = float(law.fit.predict(unique * repetitions))
        effective, _ = equivalent_with_interval(law.fit, loss)
        row["effective_episodes"] = effective
        if repetitions > 1 and np.isfinite(effective):
            # What one repeated pass over an episode is worth, as a share of a fresh episode.
            row["repeat_worth"] = (effective - unique) / (unique * (repetitions - 1))
    return row


def quality_worth(table: pd.DataFrame, laws: list[AxisLaw]) -> list[dict]:
    """Loss against noise per width, and what a noisy episode is worth in clean ones: the
    clean amount law (lowest noise, same levels of the other crossed axes) inverted at the
    noisy runs' mean loss."""
    part = runs_on(table, "quality")
    out = []
    for width, runs in part.groupby("d_model", sort=True):
        clean_noise = float(runs["noise"].min())
        others = [column for column in slice_columns(runs, "quality") if column != "episodes"]
        rows = []
        for keys, group in runs.groupby(["noise", "episodes", *others], sort=True):
            noise, episodes, *rest = keys
            where = {column: float(value) for column, value in zip(others, rest)}
            clean = find_law(laws, "amount", "loss", int(width), noise=clean_noise, **where)
            rows.append({**_quality_row(float(noise), float(episodes), group, clean), **where})
        has_clean = any(row["clean_episodes"] is not None for row in rows)
        out.append({"width": int(width), "clean_noise": clean_noise, "has_clean_law": has_clean, "rows": rows})
    return out


def _quality_row(noise: float, episodes: float, runs: pd.DataFrame, clean: AxisLaw | None) -> dict:
    loss = float(runs["loss"].mean())
    labels = runs["quality"].dropna().unique().tolist() if "quality" in runs.columns else []
    row = {"noise": noise, "quality": labels[0] if labels else None, "episodes": episodes, "loss": loss}
    row.update(n_runs=len(runs), clean_episodes=None, clean_episodes_ci=None, worth=None, worth_ci=None)
    if clean is not None:
        value, ci = equivalent_with_interval(clean.fit, loss)
        row.update(clean_episodes=value, clean_episodes_ci=ci, worth=value / episodes)
        row["worth_ci"] = [ci[0] / episodes, ci[1] / episodes] if ci else None
    return row


def mixture_laws(table: pd.DataFrame, reference: str, *, bootstrap: int, seed: int) -> list[dict]:
    """Per width, the mixture law L_s(r) = c + k exp(t . r) of every validation source's loss
    (:func:`roboscale.fit.fit_mixture_law`) and the optimal mixture for the reference's loss."""
    part = runs_on(table, "mixture")
    sources = [c[2:] for c in part.columns if c.startswith("r_") and part[c].fillna(0).gt(0).any()]
    if len(sources) < 2:
        return [{"width": None, "sources": sources, "laws": [], "optimal": {"error": "fewer than 2 sources mixed"}}]
    out = []
    for width, runs in part.groupby("d_model", sort=True):
        proportions = runs[[f"r_{s}" for s in sources]].fillna(0.0).to_numpy(float)
        laws, fits = [], {}
        for source in sources:
            column = f"loss_{source}" if f"loss_{source}" in runs.columns else ("loss" if source == reference else None)
            if column is None:
                continue
            loss = runs[column].to_numpy(float)
            entry, fit = _mixture_law(proportions, loss, sources, source, column, bootstrap=bootstrap, seed=seed)
            laws.append(entry)
            if fit is not None:
                fits[source] = fit
        optimal = _optimal_mixture(fits, reference)
        out.append({"width": int(width), "sources": sources, "laws": laws, "optimal": optimal})
    return out


def _mixture_law(
    proportions, loss, sources, source, column, *, bootstrap: int, seed: int
) -> tuple[dict, object | None]:
    points = {"r": proportions[:, 0].tolist(), "loss": loss.tolist()}
    entry = {"source": source, "loss_column": column, "points": points, "curve": None}
    fit = result_or_reason(
        lambda: fit_mixture_law(proportions, loss, sources, name=source, bootstrap=bootstrap, seed=seed)
    )
    if isinstance(fit, dict):
        return {**entry, "fit": fit}, None
    grid = np.linspace(0.0, 1.0, CURVE_POINTS)
    two_sources = np.column_stack([grid, 1.0 - grid]) if len(sources) == 2 else None
    curve = None if two_sources is None else {"r": grid.tolist(), "loss": np.asarray(fit.predict(two_sources)).tolist()}
    return {**entry, "fit": fit.to_dict(), "curve": curve}, fit


def _optimal_mixture(fits: dict, reference: str) -> dict:
    """The mixture minimising the reference's validation loss, with its intervals
    (:func:`roboscale.fit.optimal_mixture` over every source's law)."""
    if reference not in fits:
        return {"error": f"no mixture law for the reference source {reference!r}"}
    optimal = result_or_reason(lambda: optimal_mixture(list(fits.values()), reference))
    if isinstance(optimal, dict):
        return optimal
    return {
        "target": optimal.target,
        "proportions": dict(zip(optimal.source_names, optimal.proportions)),
        "ci": {name: list(bounds) for name, bounds in optimal.proportions_ci.items()},
        "loss": optimal.loss,
        "loss_ci": list(optimal.loss_ci),
        "extrapolated": optimal.extrapolated,
    }
