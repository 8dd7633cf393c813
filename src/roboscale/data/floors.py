"""Known floors: the analytic irreducible loss of a task on data made with injected noise.

A scaling law's E is the loss no model size or data amount removes. When the data
were generated with Gaussian action noise of known std, part of it is known exactly:

- ``bc``: the executed action is ``clip(a* + N(0, S^2), low, high)`` per dimension,
  with ``a*`` the scripted expert's action (a deterministic function of the
  observation the model sees, stored as ``expert.action``) and the noise drawn
  afresh every step (see :mod:`roboscale.data.generate`). No history tells the
  noise of the current step, so the Bayes-optimal loss is the conditional entropy
  ``H(bin(x) | a*)`` of the executed action's token (nats), summed over the
  independent dimensions; the model's loss is the mean per dimension. With the
  tokenizer's own bin edges and the clipped mass in the bins of the bounds it is
  computed exactly from the Gaussian CDF. For the continuous tokenizer (mean
  squared error of normalised values) the floor is the censored Gaussian's
  variance over the tokenizer's std^2.
- ``wm``: a deterministic simulator's next observation, given its full state and
  the executed action, has zero entropy. Under quantisation and a finite history
  the exact floor is not computable; 0 is reported as a lower bound.

The average runs over every frame of the dataset: E is the law's asymptote for the
data's distribution, and every frame (training or validation) is a draw from it, so
all frames give the estimate of lowest variance. The validation split's own average
(what the measured validation losses approach; 120 episodes of the demo's data lie
0.02 nats below the whole) is kept beside it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from roboscale.data.dataset import Dataset, open_dataset
from roboscale.errors import BadInputError
from roboscale.tokenize import Tokenizer, TokenizerSpec, action_spec_for, fit_tokenizer

TASKS = ("bc", "wm")
KINDS = ("exact", "lower bound")
FRAMES_PER_CHUNK = 8192
"""Frames whose bin probabilities are held in memory at once (frames x bins float64)."""


@dataclass(frozen=True)
class KnownFloor:
    """A task's analytic irreducible loss on one dataset under one tokenizer.

    ``loss`` is in the training loss's unit: nats per predicted dimension for discrete
    tokenizers, mean squared error of normalised values for the continuous one; None
    when no floor is known (``note`` says why)."""

    loss: float | None
    per_dim: tuple[float, ...]
    """The floor of each predicted dimension (actions for bc, states for wm)."""
    kind: str
    """exact, or lower bound (the true floor is at least ``loss``)."""
    note: str
    validation: float | None = None
    """The same floor averaged over the validation split's frames only: what the measured
    validation losses approach (it differs from ``loss`` by the sampling of validation episodes)."""

    def to_dict(self) -> dict:
        return {**asdict(self), "per_dim": list(self.per_dim)}

    @classmethod
    def from_dict(cls, values: dict) -> KnownFloor:
        loss = values.get("loss")
        return cls(
            loss=None if loss is None else float(loss),
            per_dim=tuple(float(v) for v in values.get("per_dim") or ()),
            kind=str(values.get("kind", "")),
            note=str(values.get("note", "")),
            validation=None if values.get("validation") is None else float(values["validation"]),
        )


def unknown(note: str) -> KnownFloor:
    """No floor: ``note`` says why."""
    return KnownFloor(None, (), "", note)


# -- the distributions ---------------------------------------------------------------


def _normal_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF, accurate in both tails (torch's ndtr: numpy has no erf)."""
    import torch

    return torch.special.ndtr(torch.from_numpy(np.asarray(z, dtype=np.float64))).numpy()


def clipped_gaussian_bin_probabilities(
    mean: np.ndarray, std: float, edges: np.ndarray, low: float, high: float
) -> np.ndarray:
    """(frames, bins) probabilities of each bin of ``clip(mean + N(0, std^2), low, high)``.

    ``edges`` (bins + 1,) as the tokenizer keeps them: a value ``x`` falls in bin
    ``#{interior edges <= x}`` (values beyond the outer edges land in the end bins),
    so the mass clipped onto ``low`` or ``high`` goes to the bin holding that bound."""
    interior = np.asarray(edges, dtype=np.float64)[1:-1]
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    # P(x >= c) per interior edge c: 1 below the lower bound, 0 above the upper one,
    # the Gaussian tail in between (at c == high: the mass clipped onto high).
    tail = _normal_cdf((mean[:, None] - interior[None, :]) / std)
    tail = np.where(interior[None, :] <= low, 1.0, np.where(interior[None, :] > high, 0.0, tail))
    at_least = np.concatenate([np.ones((len(mean), 1)), tail, np.zeros((len(mean), 1))], axis=1)
    return np.clip(at_least[:, :-1] - at_least[:, 1:], 0.0, 1.0)


def entropy_nats(probabilities: np.ndarray) -> np.ndarray:
    """Entropy (nats) of each row of ``probabilities`` (0 log 0 = 0)."""
    p = np.asarray(probabilities, dtype=np.float64)
    terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    return terms.sum(axis=-1)


def clipped_gaussian_token_entropy(
    mean: np.ndarray, std: float, edges: np.ndarray, low: float, high: float
) -> np.ndarray:
    """(frames,) entropy (nats) of the bin of ``clip(mean + N(0, std^2), low, high)``, in chunks."""
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    parts = [
        entropy_nats(clipped_gaussian_bin_probabilities(mean[i : i + FRAMES_PER_CHUNK], std, edges, low, high))
        for i in range(0, len(mean), FRAMES_PER_CHUNK)
    ]
    return np.concatenate(parts) if parts else np.empty(0)


def clipped_gaussian_variance(mean: np.ndarray, std: float, low: float, high: float) -> np.ndarray:
    """(frames,) variance of ``clip(mean + N(0, std^2), low, high)`` (a censored Gaussian)."""
    mu = np.asarray(mean, dtype=np.float64).reshape(-1)
    alpha, beta = (low - mu) / std, (high - mu) / std
    cdf_alpha, cdf_beta = _normal_cdf(alpha), _normal_cdf(beta)
    pdf_alpha, pdf_beta = (np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi) for z in (alpha, beta))
    inside = cdf_beta - cdf_alpha
    first = low * cdf_alpha + high * (1 - cdf_beta) + mu * inside + std * (pdf_alpha - pdf_beta)
    second = (
        low**2 * cdf_alpha
        + high**2 * (1 - cdf_beta)
        + inside * (mu**2 + std**2)
        + 2 * mu * std * (pdf_alpha - pdf_beta)
        + std**2 * (alpha * pdf_alpha - beta * pdf_beta)
    )
    return np.maximum(second - first**2, 0.0)


# -- a dataset's floor -----------------------------------------------------------------


def known_floor(
    dataset: Dataset | str | Path,
    task: str,
    tokenizer: str | TokenizerSpec,
    *,
    action_tokenizer: str | TokenizerSpec | None = None,
) -> KnownFloor:
    """The known floor of ``task`` (bc or wm) on ``dataset`` with state ``tokenizer``
    (and ``action_tokenizer``; default: the state tokenizer's kind and bins, one token
    per action dimension, as training does). Bin edges are fitted as training fits them."""
    if task not in TASKS:
        raise BadInputError(f"task {task!r}: choose one of {', '.join(TASKS)}")
    state_spec = TokenizerSpec.parse(tokenizer) if isinstance(tokenizer, str) else tokenizer
    if isinstance(action_tokenizer, str):
        action_tokenizer = TokenizerSpec.parse(action_tokenizer)
    action_spec = action_spec_for(state_spec, action_tokenizer)
    data = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
    generation = data.provenance.get("spec") if data.provenance.get("generator") == "roboscale data generate" else None
    if generation is None:
        return unknown("imported data: how its actions and dynamics were perturbed is not known")
    if task == "wm":
        return _world_model_floor(data)
    return _behaviour_cloning_floor(data, generation, action_spec)


def _world_model_floor(data: Dataset) -> KnownFloor:
    dims = data.features["observation.state"].size
    return KnownFloor(
        0.0,
        (0.0,) * dims,
        "lower bound",
        "a deterministic simulator's next observation has zero entropy given its full state and action; "
        "with quantised states and a finite history the exact floor is not computable, so 0 bounds it from below",
    )


def _behaviour_cloning_floor(data: Dataset, generation: dict, action_spec: TokenizerSpec) -> KnownFloor:
    quality = generation.get("quality") or {}
    noise = float(quality.get("action_noise", 0.0))
    if noise <= 0:
        return unknown("no injected action noise (expert data): the floor depends on the expert, not known")
    if quality.get("epsilon") or quality.get("random_episodes"):
        return unknown(
            "random actions were mixed in (epsilon or random-policy episodes): only Gaussian noise has an exact floor"
        )
    if "expert.action" not in data.features:
        return unknown(f"{data.root} has no expert.action column: the expert's actions are needed")
    low, high = _action_bounds(generation.get("env", ""), data)
    tokenizer = _fit_action_tokenizer(data, action_spec)

    def per_dimension(split: str | None) -> list[float]:
        """The floor of each action dimension, averaged over ``split``'s frames (None: all)."""
        expert = data.frames(["expert.action"], split=split)["expert.action"]
        expert = expert.reshape(len(expert), -1)
        if tokenizer.discrete:
            values = [
                clipped_gaussian_token_entropy(expert[:, d], noise, tokenizer.edges[d], low[d], high[d])
                for d in range(expert.shape[1])
            ]
        else:
            values = [
                clipped_gaussian_variance(expert[:, d], noise, low[d], high[d]) / tokenizer.std[d] ** 2
                for d in range(expert.shape[1])
            ]
        return [float(v.mean()) for v in values]

    per_dim = per_dimension(None)
    validation = float(np.mean(per_dimension("validation"))) if "validation" in data.splits else None
    unit = "nats per action dimension" if tokenizer.discrete else "normalised squared error per action dimension"
    on_validation = "" if validation is None else f"; over the validation split's frames alone {validation:.4f}"
    curated = (
        "; successful episodes only: selection may bend the noise slightly" if quality.get("successful_only") else ""
    )
    return KnownFloor(
        float(np.mean(per_dim)),
        tuple(per_dim),
        "exact",
        f"{unit}: executed action = clip(expert + N(0, {noise:g}^2)) under {action_spec}, "
        f"averaged over all {data.total_frames:,} frames{on_validation}{curated}",
        validation,
    )


def _fit_action_tokenizer(data: Dataset, spec: TokenizerSpec) -> Tokenizer:
    """The action tokenizer exactly as training fits it (stats.json range; quantile edges
    from the training frames)."""
    samples = None
    if spec.kind == "quantile":
        actions = data.frames(["action"], split="train" if "train" in data.splits else None)["action"]
        samples = actions.reshape(len(actions), -1)
    return fit_tokenizer(spec, data.stats["action"], samples)


def _action_bounds(env: str, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The bounds actions were clipped to: the simulator's action space, or (when its
    simulator is not installed here) the range the stats recorded."""
    from roboscale.data.envs import get_family

    try:
        spec = get_family(env).spec
        return spec.action_low.astype(np.float64), spec.action_high.astype(np.float64)
    except BadInputError:
        stats = data.stats["action"]
        return np.asarray(stats["min"], dtype=np.float64), np.asarray(stats["max"], dtype=np.float64)
