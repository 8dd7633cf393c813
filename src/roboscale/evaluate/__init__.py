"""Evaluation: closed-loop rollouts of behaviour-cloning policies, open-loop error of world models.

from roboscale.evaluate import evaluate_policy, evaluate_world_model

result = evaluate_policy("runs/bc-d64", episodes=50, seed=0, workers=2)
result.mean.success_rate, result.mean.ci_low, result.per_task[0].mean_return
errors = evaluate_world_model("runs/wm-d64", horizons=(1, 5, 20))
errors.error_at(20).mse_normalised
errors.error_at(20).psnr_db        # a world model on camera frames (also code_accuracy, ...)

Runs that see camera frames are rolled out with the dataset's camera rendered every
step, and their world models are scored in token and pixel space
(see :mod:`roboscale.evaluate.images` and :mod:`roboscale.evaluate.world_model`).

The public names are imported on first use, so that reading a run folder (and
refusing a bad one) does not wait for torch to load.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "evaluate_policy": "roboscale.evaluate.closed_loop",
    "PolicyEvaluation": "roboscale.evaluate.closed_loop",
    "TaskSummary": "roboscale.evaluate.closed_loop",
    "evaluate_world_model": "roboscale.evaluate.world_model",
    "WorldModelEvaluation": "roboscale.evaluate.world_model",
    "HorizonError": "roboscale.evaluate.world_model",
    "EpisodeResult": "roboscale.evaluate.rollout",
    "RolloutTiming": "roboscale.evaluate.rollout",
    "run_episodes": "roboscale.evaluate.rollout",
    "ExpertPolicySource": "roboscale.evaluate.policy",
    "RunPolicySource": "roboscale.evaluate.policy",
    "EvalEpisode": "roboscale.evaluate.episodes",
    "plan_episodes": "roboscale.evaluate.episodes",
    "wilson_interval": "roboscale.evaluate.stats",
    "Camera": "roboscale.evaluate.images",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'roboscale.evaluate' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
