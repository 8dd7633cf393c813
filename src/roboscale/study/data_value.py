"""Which data to collect next: the marginal value of each data axis at the operating point.

Per width, the predicted drop from spending the next ``next_episodes`` episodes as

- ``amount``: more of the same data (the amount law of ``loss``, the primary validation set);
- ``tasks``: new training tasks at the current episodes per task (the diversity law of
  ``heldout_loss``, the held-out tasks);
- ``quality``: clean demonstrations instead of ones at the current noise (``loss``: the
  current loss read as clean episodes on the clean amount law, plus ``next_episodes``).

Each option is ``{option, metric, description, current, drop, drop_ci, relative_drop,
relative_drop_ci, [new_tasks]}`` or ``{option, metric, error}``. The metrics differ
(validation vs held-out loss), so options are ranked by the RELATIVE drop (the share of
the current value of their own metric); the recommendation says so, and says it cannot
tell when the two best intervals overlap.
"""

from __future__ import annotations

import numpy as np

from roboscale.fit.bootstrap import percentile_interval
from roboscale.study.data_analysis import CI_LEVEL, AxisLaw, equivalent_episodes, find_law, law_params

OPTION_WORDS = {
    "amount": "as more of the same",
    "tasks": "as {new_tasks} new tasks",
    "quality": "as cleaner demonstrations",
}


def marginal_values(laws: list[AxisLaw], operating: dict, *, next_episodes: int) -> list[dict]:
    """One entry per width that has an amount or diversity law: its operating point and options."""
    widths = sorted({law.width for law in laws if law.fit is not None and law.axis in ("amount", "diversity")})
    out = []
    for width in widths:
        options = [
            _amount_option(laws, width, next_episodes),
            _tasks_option(laws, width, next_episodes),
            _quality_option(laws, width, operating, next_episodes),
        ]
        point = {key: operating.get(key) for key in ("episodes", "train_tasks", "noise") if key in operating}
        out.append({"width": width, "operating_point": point, "next_episodes": next_episodes, "options": options})
    return out


def _drop(current: float, after: float, current_samples, after_samples, description: str, **extra) -> dict:
    """An option's predicted drop (current - after) and relative drop, with intervals."""
    drop = current - after
    entry = {**extra, "description": description, "current": current, "drop": drop}
    entry.update(drop_ci=None, relative_drop=drop / current, relative_drop_ci=None)
    if current_samples is not None:
        drops = np.asarray(current_samples) - np.asarray(after_samples)
        entry["drop_ci"] = percentile_interval(drops, CI_LEVEL)
        entry["relative_drop_ci"] = percentile_interval(drops / np.asarray(current_samples), CI_LEVEL)
    return entry


def _law_drop(law: AxisLaw, x0: float, x1: float, description: str, **extra) -> dict:
    """The drop of ``law`` from level ``x0`` to ``x1``, with its bootstrap interval."""
    current, after = (float(law.fit.predict(x)) for x in (x0, x1))
    samples = law.fit.predict_samples(np.array([x0, x1]))
    current_samples, after_samples = (samples[:, 0], samples[:, 1]) if samples is not None else (None, None)
    return _drop(current, after, current_samples, after_samples, description, **extra)


def _amount_option(laws: list[AxisLaw], width: int, next_episodes: int) -> dict:
    head = {"option": "amount", "metric": "loss"}
    law = find_law(laws, "amount", "loss", width)
    if law is None:
        return {**head, "error": "no amount law of the validation loss at this width"}
    episodes = float(law.runs["episodes"].max())
    description = f"{next_episodes:,} more episodes of the same data, from {episodes:,.0f}"
    return {**head, **_law_drop(law, episodes, episodes + next_episodes, description, episodes=episodes)}


def _tasks_option(laws: list[AxisLaw], width: int, next_episodes: int) -> dict:
    head = {"option": "tasks", "metric": "heldout_loss"}
    law = find_law(laws, "diversity", "heldout_loss", width)
    if law is None:
        return {**head, "error": "no diversity law of the held-out-task loss at this width"}
    tasks = float(law.runs["train_tasks"].max())
    at_most = law.runs[np.isclose(law.runs["train_tasks"], tasks)]
    per_task = float((at_most["episodes"] / at_most["train_tasks"]).mean())
    new_tasks = next_episodes / per_task
    description = f"{new_tasks:.3g} new tasks at the current {per_task:,.0f} episodes per task, from {tasks:.0f} tasks"
    drop = _law_drop(law, tasks, tasks + new_tasks, description, new_tasks=new_tasks, episodes_per_task=per_task)
    return {**head, **drop}


def _quality_option(laws: list[AxisLaw], width: int, operating: dict, next_episodes: int) -> dict:
    """Clean episodes instead of ones at the operating noise: the current loss (the amount
    law at that noise) read as clean episodes, plus ``next_episodes`` clean ones."""
    head = {"option": "quality", "metric": "loss"}
    noisy = find_law(laws, "amount", "loss", width, noise=operating.get("noise", np.nan))
    noise_levels = [
        law.slice["noise"]
        for law in laws
        if law.fit is not None and (law.axis, law.y, law.width) == ("amount", "loss", width) and "noise" in law.slice
    ]
    if noisy is None or not noise_levels:
        return {**head, "error": "needs the amount axis crossed with quality (an amount law per noise level)"}
    clean_noise = min(noise_levels)
    if np.isclose(clean_noise, noisy.slice["noise"]):
        return {**head, "error": "the data is already at the cleanest noise level studied"}
    clean = find_law(laws, "amount", "loss", width, noise=clean_noise)
    episodes = float(noisy.runs["episodes"].max())
    current = float(noisy.fit.predict(episodes))
    point, samples = law_params(clean.fit)
    as_clean = float(equivalent_episodes(point, current)[0])
    after = float(clean.fit.predict(as_clean + next_episodes))
    current_samples = after_samples = None
    noisy_samples = noisy.fit.predict_samples(np.array([episodes]))
    if samples is not None and noisy_samples is not None:
        n = min(len(samples), len(noisy_samples))
        current_samples = noisy_samples[:n, 0]
        as_clean_samples = equivalent_episodes(samples[:n], current_samples)
        after_samples = samples[:n, 0] + samples[:n, 1] * (as_clean_samples + next_episodes) ** -samples[:n, 2]
    description = (
        f"{next_episodes:,} clean episodes (noise {clean_noise:g}) instead of noise {noisy.slice['noise']:g}; "
        f"the current {episodes:,.0f} noisy episodes are worth {as_clean:,.0f} clean ones"
    )
    extra = {"episodes": episodes, "clean_equivalent": as_clean, "noise": noisy.slice["noise"]}
    return {**head, **_drop(current, after, current_samples, after_samples, description, **extra)}


def recommend(marginal: list[dict]) -> dict | None:
    """One sentence: the option with the largest relative drop at the largest width, or
    "cannot tell" when its interval overlaps the runner-up's."""
    if not marginal:
        return None
    entry = marginal[-1]
    options = [o for o in entry["options"] if "error" not in o and np.isfinite(o["relative_drop"])]
    if not options:
        return {"width": entry["width"], "choice": None, "caveat": None, "sentence": _nothing_to_compare(entry)}
    ranked = sorted(options, key=lambda o: -o["relative_drop"])
    best, runner = ranked[0], (ranked[1] if len(ranked) > 1 else None)
    overlap = runner is not None and _overlap(best, runner)
    n = entry["next_episodes"]
    result = {"width": entry["width"], "choice": None if overlap else best["option"], "ranked": []}
    result["ranked"] = [o["option"] for o in ranked]
    result["metric_note"] = (
        "options are ranked by relative drop: more of the same and cleaner demonstrations on the validation "
        "loss, new tasks on the held-out-task loss"
    )
    if overlap:
        result["sentence"] = (
            f"The data cannot tell whether the next {n:,} episodes are worth most {_words(best)} "
            f"({_effect(best)}) or {_words(runner)} ({_effect(runner)}): their {CI_LEVEL:.0%} intervals overlap."
        )
        result["caveat"] = "intervals overlap: more seeds or more levels would separate them"
        return result
    tail = f", ahead of {_words(runner).removeprefix('as ')} ({_effect(runner)})" if runner else ""
    result["sentence"] = f"The next {n:,} episodes are worth most {_words(best)} ({_effect(best)}){tail}."
    result["caveat"] = None if runner else "only one option could be evaluated"
    return result


def _nothing_to_compare(entry: dict) -> str:
    reasons = "; ".join(f"{o['option']}: {o['error']}" for o in entry["options"])
    return f"No recommendation: no option could be evaluated ({reasons})."


def _overlap(a: dict, b: dict) -> bool:
    """True when the relative-drop intervals of ``a`` and ``b`` overlap (or one is missing)."""
    low_a, high_a = a.get("relative_drop_ci") or (None, None)
    low_b, high_b = b.get("relative_drop_ci") or (None, None)
    if None in (low_a, high_a, low_b, high_b) or not np.all(np.isfinite([low_a, high_a, low_b, high_b])):
        return True
    return low_a <= high_b and low_b <= high_a


def _words(option: dict) -> str:
    new_tasks = option.get("new_tasks")
    count = "" if new_tasks is None else f"{new_tasks:.0f}" if new_tasks >= 1.5 else f"{new_tasks:.2g}"
    return OPTION_WORDS[option["option"]].format(new_tasks=count)


def _effect(option: dict) -> str:
    metric = "held-out-task loss" if option["metric"] == "heldout_loss" else "validation loss"
    ci = option.get("relative_drop_ci")
    interval = f", {CI_LEVEL:.0%} interval {100 * ci[0]:.3g}-{100 * ci[1]:.3g}%" if ci and all(np.isfinite(ci)) else ""
    return f"{metric} down {100 * option['relative_drop']:.3g}%{interval}"
