"""Does a world model beat predicting that nothing moves? The open-loop section of a wm group.

From the stored open-loop evaluations of a group's runs
(``WorldModelEvaluation.to_dict()``, see roboscale.evaluate.world_model):

- ``runs``: each evaluated run's N, C, budget, validation loss and its error by horizon
  (``mse_normalised`` against ``persistence_mse_normalised``, the error of predicting
  s[t+h] = s[t] in the same units), with ``worse_than_persistence_at`` (the horizons
  where its error is above the baseline's) and ``persistence_warning`` (one line, or None);
  a world model that sees images adds its pixel and token errors by horizon
  (``psnr_db`` ...), ``image_tokenizer`` and ``frames`` (real and predicted frames as
  base64 PNG, for the report's strip);
- ``evaluated``: how many runs were evaluated, ``worse``: how many lose to the baseline
  at one horizon or more;
- ``warning``: one line for the report's warnings when ``worse`` > 0, else None.
"""

from __future__ import annotations

import pandas as pd

RUN_KEYS = ["run_id", "seed", "d_model", "N", "C", "budget", "loss"]


def open_loop_analysis(finished: pd.DataFrame, open_loop: dict[str, dict], label: str) -> dict | None:
    """The open-loop section of a group (``label``: its name in warnings), or None when none
    of its ``finished`` runs has an entry in ``open_loop`` (results by run_id)."""
    rows = finished[finished["run_id"].isin(set(open_loop))].sort_values(["budget", "N"])
    if rows.empty:
        return None
    runs = [_run_entry(row, open_loop[row["run_id"]]) for row in rows[RUN_KEYS].to_dict(orient="records")]
    losing = [run for run in runs if run["worse_than_persistence_at"]]
    return {
        "runs": runs,
        "evaluated": len(runs),
        "worse": len(losing),
        "warning": _warning(label, losing, len(runs)),
    }


HORIZON_KEYS = ("horizon", "mse_normalised", "persistence_mse_normalised")
IMAGE_HORIZON_KEYS = (
    "psnr_db",
    "persistence_psnr_db",
    "reconstruction_psnr_db",
    "code_accuracy",
    "cross_entropy",
    "patch_mse",
)
"""Errors of world models that see images (pixel and token space), kept when present."""


def _run_entry(row: dict, result: dict) -> dict:
    horizons = [
        {key: error[key] for key in (*HORIZON_KEYS, *IMAGE_HORIZON_KEYS) if key in error}
        for error in result["horizons"]
    ]
    entry = {
        **row,
        "horizons": horizons,
        "worse_than_persistence_at": result["worse_than_persistence_at"],
        "persistence_warning": result.get("persistence_warning"),
    }
    if result.get("image_tokenizer"):  # the report's strip of real vs predicted frames
        entry.update(image_tokenizer=result["image_tokenizer"], frames=result.get("frames"))
    return entry


def _warning(label: str, losing: list[dict], evaluated: int) -> str | None:
    """``label: 2 of 3 world models evaluated are worse than predicting no change ...``, or None."""
    if not losing:
        return None
    worst = max(losing, key=lambda run: run["budget"])
    return (
        f"{label}: {len(losing)} of {evaluated} world model(s) evaluated open-loop are worse than predicting that "
        f"nothing moves; the largest-budget one ({worst['run_id']}, d_model {worst['d_model']}) is "
        f"{worst['persistence_warning']}"
    )
