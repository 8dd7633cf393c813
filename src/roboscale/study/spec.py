"""The study file: one TOML file describes a whole scaling study, every value defaulted.

    name = "mt10-bc"
    [data]      the dataset: a path, or how to generate it
    [sweep]     tasks, tokenizers, the model ladder, compute budgets, seeds, limits
    [train]     settings shared by every run
    [tune]      the learning-rate sweep of `roboscale tune` (used with [train] lr = "tuned")
    [executor]  local worker processes or a Ray cluster
    [evaluate]  closed-loop success of the bc policies
    [fit]       options of the fits (e.g. E held at the known floor)

``roboscale study init`` writes a commented example (:data:`EXAMPLE`). Unknown keys,
wrong types and impossible values are refused before anything runs, naming the key
and the fix.
"""

from __future__ import annotations

import math
import tomllib
import types
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from roboscale.errors import BadInputError, check_seed
from roboscale.models import WM_TARGETS, check_parametrization
from roboscale.tokenize import TokenizerSpec
from roboscale.tokenize.image_spec import ImageTokenizerSpec, is_image_tokenizer
from roboscale.train import LADDER_WIDTHS, check_width

OBSERVATIONS = ("state", "image", "image+state")
"""What a study's models see of each timestep (``[sweep] observation``)."""

DEFAULT_BUDGET_RANGE = (1e11, 1e12)
"""Compute budgets (FLOPs) spanned when a study gives neither budgets nor budget_range."""


@dataclass(frozen=True)
class DataSection:
    path: str = ""
    """An existing dataset folder; empty: generate one (see ``generate``) inside the study folder."""
    generate: dict = field(default_factory=dict)
    """Keyword arguments of `roboscale data generate` (env, tasks, episodes, quality, seed, ...)."""
    sources: dict = field(default_factory=dict)
    """Named sources of a data-axes study, ``[data.sources.NAME]``: each a table with a
    path or a generate table (like ``[data]``)."""


@dataclass(frozen=True)
class SweepSection:
    tasks: list[str] = field(default_factory=lambda: ["bc"])
    tokenizers: list[str] = field(default_factory=lambda: ["uniform:256"])
    """The study's tokenizer factor: state tokenizers (uniform:BINS, quantile:BINS, continuous; @K tokens
    per observation), or, when ``observation`` has images, image tokenizers (patch:P, vq:K@T)."""
    observation: str = "state"
    """What the models see of each timestep: state, image (camera frames only) or image+state."""
    state_tokenizer: str = "uniform:256"
    """The state tokenizer of every run when ``observation`` has images (image+state)."""
    camera: str = ""
    """The image feature's camera when the dataset has several (empty: its only one)."""
    action_tokenizer: str = ""
    """Action tokenizer for every run; empty: the state tokenizer's kind and bins."""
    widths: list[int] = field(default_factory=lambda: list(LADDER_WIDTHS[:7]))
    """The model ladder as widths (d_model); depth and heads follow the ladder rule."""
    budgets: list[float] = field(default_factory=list)
    """Compute budgets in FLOPs; empty: ``budget_count`` log-spaced values over ``budget_range``."""
    budget_range: list[float] = field(default_factory=list)
    """[low, high] FLOPs, spanned by ``budget_count`` log-spaced budgets; empty (and no
    ``budgets``): [1e11, 1e12]. Give ``budgets`` or ``budget_range``, not both."""
    budget_count: int = 3
    sizes_per_budget: int = 5
    """Ladder sizes trained per budget, the nearest to the expected optimum."""
    tokens_per_param: float = 20.0
    """Prior for the expected optimum, N* = sqrt(C / (k x tokens_per_param)) with k each width's FLOPs per
    parameter per token: where each budget's sizes are centred."""
    seeds: list[int] = field(default_factory=lambda: [0])
    min_steps: int = 50
    """Runs with fewer optimiser steps are left out (too few steps make the right arm of the U)."""
    max_epochs: float = 1.0
    """Runs needing more passes over the training data are left out with a warning; raise to allow repeats."""
    holdout_budget: bool = False
    """Also train one budget 10x the largest, only to check the forecast."""


@dataclass(frozen=True)
class TrainSection:
    context_steps: int = 8
    batch_size: int = 64
    eval_points: int = 16
    eval_windows: int = 1024
    flops_convention: str = "exact"
    lr_scale: float = 1.0
    """Multiplies the learning rate (the default rule's, a given one or the tuned one)."""
    lr: float | str = "rule"
    """Peak learning rate: "rule" (roboscale's default rule), a number (every width), or
    "tuned": the best of `roboscale tune` (tune.json in the study folder) at base_width,
    transferred to the other widths by muP, or under the standard parametrisation by
    the default rule's width scaling."""
    parametrization: str = "standard"
    """standard, or mup (the maximal-update parametrisation: learning rates transfer across widths)."""
    base_width: int = 32
    """muP's reference width, and the width `roboscale tune` trains."""
    wm_target: str = "absolute"
    """What world models predict of each next state: absolute, or delta (its change)."""


@dataclass(frozen=True)
class TuneSection:
    lrs: list[float] = field(default_factory=lambda: [1e-3, 3e-3, 1e-2, 3e-2])
    """Peak learning rates tried at [train] base_width."""
    budget: float = 0.0
    """FLOPs per tuning run; 0: the study's smallest budget."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Seeds per learning rate (their mean loss decides)."""


@dataclass(frozen=True)
class ExecutorSection:
    kind: str = "local"
    """local (worker processes on this machine) or ray."""
    workers: int = 0
    """Local worker processes; 0: one per CPU."""
    threads: int = 1
    """Threads per run (1-thread workers beat one multi-threaded run for small models)."""
    stack: int = 16
    """Runs that differ only in their seed train as one batched job of at most this many
    models (one computation: up to 4x the throughput of separate runs for small models
    on short sequences); fewer where steps are long and stacking does not pay (see
    ``roboscale.study.plan.STACK_TOKENS``); 1 trains every run on its own."""
    address: str = ""
    """Ray cluster address (e.g. auto or host:port); empty starts a local Ray instance."""
    retry_failed: bool = False
    """Re-run runs that failed before (by default they stay recorded as failed)."""


@dataclass(frozen=True)
class EvaluateSection:
    policies: str = "none"
    """Closed-loop evaluation of the bc runs after training: none, all, or optimal (the
    lowest-loss run of every budget)."""
    episodes: int = 20
    """Episodes per task, on initial configurations the dataset does not contain."""
    seed: int = 0
    envs: int = 25
    """Environments per batched policy call."""
    workers: int = 0
    """Rollout worker processes per evaluation; 0: one per CPU (results do not depend on it)."""
    world_models: str = "none"
    """Open-loop evaluation of the wm runs after training (prediction error at 1, 5 and 20
    steps against predicting that nothing moves): none, all, or optimal (the lowest-loss
    run of every budget)."""


@dataclass(frozen=True)
class FitSection:
    fixed_e: str | float = ""
    """Hold the parametric law's E fixed: empty (fitted), "known" (each group's known floor,
    when the data's injected noise gives one; see roboscale.data.floors) or a loss > 0."""


@dataclass(frozen=True)
class MixtureSection:
    """``[axes.mixture]``: training data mixed from two or more sources."""

    sources: list[str] = field(default_factory=list)
    """Source names; the first is the one ``proportions`` (as numbers) and ``base`` count."""
    proportions: list = field(default_factory=list)
    """Shares of the training episodes: numbers (the first source's share of two sources), or one
    list per level with a share per source (summing to 1). With ``total``."""
    total: int = 0
    """Training episodes of every mixture level (fixed total)."""
    base: int = 0
    """Or: episodes of the first source in every level, plus ``added`` episodes of the second."""
    added: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class AxesSection:
    """``[axes]``: data axes, each level a derived dataset trained at fixed model sizes.
    Axes given together are crossed; the mixture is a sweep of its own."""

    reference: str = ""
    """The primary source: its validation split scores every run, its data fits the shared tokenizer;
    empty: the only source."""
    widths: list[int] = field(default_factory=list)
    """Model widths (d_model) trained at every level."""
    budget: float = 0.0
    """Training FLOPs of every run (fixed compute), except where ``repetition`` sets the length."""
    amount: list[int] = field(default_factory=list)
    """Training episodes of the reference (nested prefixes)."""
    repetition: list[float] = field(default_factory=list)
    """Passes over a fixed unique set (``unique`` episodes, or each ``amount``): run length =
    passes x the set's frames."""
    unique: int = 0
    """Training episodes of the repeated set (repetition without amount)."""
    quality: list[str] = field(default_factory=list)
    """Quality labels (expert, noise:STD, epsilon:P, random:FRACTION, successful, joined by +):
    one generated source per level, the reference's generate table with its quality replaced."""
    tasks: list[int] = field(default_factory=list)
    """Numbers of training tasks: the first N of the reference's training tasks."""
    configs: list[int] = field(default_factory=list)
    """Initial configurations per task: one generated source per level (configs_per_task)."""
    mixture: MixtureSection | None = None


@dataclass(frozen=True)
class StudySpec:
    name: str = "study"
    out: str = ""
    """Study folder (run store, runs, data, report); default: studies/NAME next to the study file."""
    data: DataSection = field(default_factory=DataSection)
    sweep: SweepSection = field(default_factory=SweepSection)
    train: TrainSection = field(default_factory=TrainSection)
    executor: ExecutorSection = field(default_factory=ExecutorSection)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)
    fit: FitSection = field(default_factory=FitSection)
    tune: TuneSection = field(default_factory=TuneSection)
    axes: AxesSection | None = None
    """Data axes (None: an IsoFLOP study)."""
    source: str = ""
    """The file it was read from (not a setting)."""

    def folder(self) -> Path:
        if self.out:
            return Path(self.out)
        base = Path(self.source).parent if self.source else Path(".")
        return base / "studies" / self.name

    def budgets(self) -> list[float]:
        if self.sweep.budgets:
            return sorted(float(b) for b in self.sweep.budgets)
        low, high = self.sweep.budget_range or DEFAULT_BUDGET_RANGE
        count = self.sweep.budget_count
        return [float(low * (high / low) ** (i / max(count - 1, 1))) for i in range(count)]

    def to_dict(self) -> dict:
        """Every setting, as the study file gives them (what is not set in an IsoFLOP study left out)."""
        out = asdict(self)
        out.pop("source")
        if not self.data.sources:
            out["data"].pop("sources")
        if self.axes is None:
            out.pop("axes")
        else:
            for key in ISOFLOP_SWEEP_KEYS:
                out["sweep"].pop(key)
            if self.axes.mixture is None:
                out["axes"].pop("mixture")
        return out


ISOFLOP_SWEEP_KEYS = ("widths", "budgets", "budget_range", "budget_count", "sizes_per_budget", "holdout_budget")
"""``[sweep]`` settings of the IsoFLOP design, unused (and refused) in a data-axes study."""

_SECTIONS = {
    "data": DataSection,
    "sweep": SweepSection,
    "train": TrainSection,
    "executor": ExecutorSection,
    "evaluate": EvaluateSection,
    "fit": FitSection,
    "tune": TuneSection,
}


def load_study(path: str | Path) -> StudySpec:
    """Read and validate a study file (TOML)."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"study file {path} not found: write one with `roboscale study init {path}`")
    if path.is_dir():
        raise BadInputError(
            f"{path} is a folder, not a study file: give the study's TOML file (e.g. {path / 'study.toml'})"
        )
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path} is not valid TOML: {error}") from None
    return study_from_dict(raw, source=str(path))


def study_from_dict(raw: dict, source: str = "") -> StudySpec:
    """Build and validate a :class:`StudySpec` from plain values (as in the TOML file)."""
    where = source or "the study"
    sections = {}
    top = {}
    for key, value in raw.items():
        if key == "axes":
            if not isinstance(value, dict):
                raise BadInputError(f"{where}: [axes] must be a table of settings")
            sections[key] = _build_axes(value, where)
        elif key in _SECTIONS:
            if not isinstance(value, dict):
                raise BadInputError(f"{where}: [{key}] must be a table of settings")
            sections[key] = _build(_SECTIONS[key], value, f"[{key}]", where)
        elif key in ("name", "out"):
            if not isinstance(value, str):
                raise BadInputError(f"{where}: {key} must be a string")
            top[key] = value
        else:
            known = ", ".join(["name", "out", *(f"[{s}]" for s in [*_SECTIONS, "axes"])])
            raise BadInputError(f"{where}: unknown key {key!r}; top-level keys are {known}")
    spec = StudySpec(**top, **sections, source=source)
    _check(spec, where)
    if spec.axes is not None:
        from roboscale.study.data_levels import check_axes

        check_axes(spec, raw.get("sweep", {}), where)
    return spec


def _build_axes(values: dict, where: str) -> AxesSection:
    values = dict(values)
    mixture = values.pop("mixture", None)
    if mixture is not None:
        if not isinstance(mixture, dict):
            raise BadInputError(f"{where}: [axes.mixture] must be a table of settings")
        mixture = _build(MixtureSection, mixture, "[axes.mixture]", where)
    return replace(_build(AxesSection, values, "[axes]", where), mixture=mixture)


def _build(cls, values: dict, section: str, where: str):
    known = {f.name: f for f in fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in values.items():
        if key not in known:
            raise BadInputError(f"{where}: unknown key {key!r} in {section}; known keys: {', '.join(known)}")
        _check_type(value, hints[key], f"{section} {key}", where)
    return cls(**values)


def _check_type(value, hint, name: str, where: str) -> None:
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list) or not all(_is(v, item) for v in value):
            raise BadInputError(f"{where}: {name} must be a list of {item.__name__} values, got {value!r}")
    elif origin in (typing.Union, types.UnionType):
        if not any(_is(value, option) for option in typing.get_args(hint)):
            raise BadInputError(f"{where}: {name} has the wrong type ({value!r})")
    elif not _is(value, hint):
        expected = "number" if hint is float else getattr(hint, "__name__", str(hint))
        raise BadInputError(f"{where}: {name} must be a {expected}, got {value!r}")


def _is(value, kind) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _check(spec: StudySpec, where: str) -> None:
    _check_data(spec, where)
    _check_sweep(spec.sweep, where)
    _check_train_and_executor(spec, where)
    _check_evaluate(spec, where)
    _check_fit(spec.fit, where)
    _check_tune(spec, where)


def _check_data(spec: StudySpec, where: str) -> None:
    if spec.data.sources:
        if spec.axes is None:
            raise BadInputError(f"{where}: [data.sources] name the sources of data axes: add an [axes] table")
        if spec.data.path or spec.data.generate:
            raise BadInputError(
                f"{where}: [data] has sources and a path or generate table: give every source under [data.sources.NAME]"
            )
        return
    if not spec.data.path and not spec.data.generate:
        raise BadInputError(f"{where}: [data] needs a path or a generate table")
    if spec.data.path and spec.data.generate:
        raise BadInputError(
            f"{where}: [data] has both path and generate: keep path to use that dataset, or generate to make one"
        )


def _check_observation(sweep: SweepSection, where: str) -> None:
    """The tokenizer factor matches the observation: image tokenizers for images, state ones otherwise."""
    if sweep.observation not in OBSERVATIONS:
        raise BadInputError(f"{where}: [sweep] observation {sweep.observation!r}: choose {', '.join(OBSERVATIONS)}")
    images = sweep.observation != "state"
    for text in sweep.tokenizers:
        if images and not is_image_tokenizer(text):
            raise BadInputError(
                f"{where}: [sweep] tokenizers has the state tokenizer {text!r} but observation is "
                f"{sweep.observation!r}: list image tokenizers (patch:P, vq:K@T), or set observation = \"state\""
            )
        if not images and is_image_tokenizer(text):
            raise BadInputError(
                f"{where}: [sweep] tokenizers has the image tokenizer {text!r} but observation is \"state\": "
                'set observation = "image" (or "image+state") for camera frames'
            )
        (ImageTokenizerSpec if images else TokenizerSpec).parse(text)
    for text in [sweep.state_tokenizer, *([sweep.action_tokenizer] if sweep.action_tokenizer else [])]:
        TokenizerSpec.parse(text)


def _check_sweep(sweep: SweepSection, where: str) -> None:
    for task in sweep.tasks:
        if task not in ("bc", "wm"):
            raise BadInputError(f"{where}: [sweep] tasks has {task!r}; use bc and/or wm")
    if not sweep.tasks or not sweep.tokenizers or not sweep.seeds:
        raise BadInputError(f"{where}: [sweep] tasks, tokenizers and seeds need at least one value each")
    for seed in sweep.seeds:
        check_seed(seed, f"{where}: [sweep] seeds has")
    repeated = sorted({seed for seed in sweep.seeds if sweep.seeds.count(seed) > 1})
    if repeated:
        raise BadInputError(
            f"{where}: [sweep] seeds repeats {', '.join(map(str, repeated))} (every run would be planned twice): "
            "list each seed once"
        )
    _check_observation(sweep, where)
    if not sweep.widths:
        raise BadInputError(
            f"{where}: [sweep] widths (the model ladder) is empty; list d_model values such as [16, 32, 64]"
        )
    for width in sweep.widths:  # every width, so a bad one is refused before data is generated
        try:
            check_width(width)
        except BadInputError as error:
            raise BadInputError(f"{where}: [sweep] widths: {error}") from None
    _check_budgets(sweep, where)
    if sweep.budget_count < 1 or sweep.sizes_per_budget < 1 or sweep.min_steps < 1:
        raise BadInputError(f"{where}: [sweep] budget_count, sizes_per_budget and min_steps must be >= 1")
    if sweep.max_epochs <= 0 or sweep.tokens_per_param <= 0:
        raise BadInputError(f"{where}: [sweep] max_epochs and tokens_per_param must be > 0")


def _check_budgets(sweep: SweepSection, where: str) -> None:
    if sweep.budgets and sweep.budget_range:
        raise BadInputError(
            f"{where}: [sweep] has both budgets and budget_range: keep budgets (a list of FLOPs) "
            "or budget_range with budget_count"
        )
    budgets = sweep.budgets or sweep.budget_range
    if any(not (math.isfinite(b) and b > 0) for b in budgets):
        raise BadInputError(f"{where}: [sweep] budgets must be positive FLOP counts (got {budgets})")
    if sweep.budget_range and (len(sweep.budget_range) != 2 or sweep.budget_range[0] >= sweep.budget_range[1]):
        raise BadInputError(f"{where}: [sweep] budget_range must be [low, high] FLOPs with low < high")


def _check_train_and_executor(spec: StudySpec, where: str) -> None:
    train, executor = spec.train, spec.executor
    if train.context_steps < 1 or train.batch_size < 1 or train.lr_scale <= 0:
        raise BadInputError(f"{where}: [train] context_steps and batch_size must be >= 1, lr_scale > 0")
    if train.wm_target not in WM_TARGETS:
        raise BadInputError(f"{where}: [train] wm_target {train.wm_target!r}: use {' or '.join(WM_TARGETS)}")
    if executor.kind not in ("local", "ray"):
        raise BadInputError(f"{where}: [executor] kind {executor.kind!r}: use local or ray")
    if executor.stack < 1:
        raise BadInputError(f"{where}: [executor] stack must be >= 1 (1: every run on its own)")
    if executor.workers < 0 or executor.threads < 1:
        raise BadInputError(f"{where}: [executor] workers must be >= 0 (0: one per CPU) and threads >= 1")


def _check_tune(spec: StudySpec, where: str) -> None:
    train, tune = spec.train, spec.tune
    if isinstance(train.lr, str) and train.lr not in ("rule", "tuned"):
        raise BadInputError(f'{where}: [train] lr {train.lr!r}: use "rule", "tuned" or a number such as 0.003')
    if not isinstance(train.lr, str) and not (math.isfinite(train.lr) and train.lr > 0):
        raise BadInputError(f"{where}: [train] lr {train.lr}: a learning rate must be > 0")
    try:
        check_parametrization(train.parametrization, train.base_width)
        check_width(train.base_width)
    except BadInputError as error:
        raise BadInputError(f"{where}: [train] {error}") from None
    if not tune.lrs or any(not (math.isfinite(lr) and lr > 0) for lr in tune.lrs):
        raise BadInputError(f"{where}: [tune] lrs must list learning rates > 0, e.g. [1e-3, 3e-3, 1e-2]")
    if not (math.isfinite(tune.budget) and tune.budget >= 0):
        raise BadInputError(f"{where}: [tune] budget must be FLOPs > 0, or 0 for the study's smallest budget")
    if not tune.seeds or len(set(tune.seeds)) != len(tune.seeds):
        raise BadInputError(f"{where}: [tune] seeds must list distinct seeds, e.g. [0] or [0, 1]")
    for seed in tune.seeds:
        check_seed(seed, f"{where}: [tune] seeds has")


def _check_evaluate(spec: StudySpec, where: str) -> None:
    evaluate = spec.evaluate
    if evaluate.policies not in ("none", "all", "optimal"):
        raise BadInputError(f"{where}: [evaluate] policies {evaluate.policies!r}: use none, all or optimal")
    if evaluate.episodes < 1 or evaluate.envs < 1 or evaluate.workers < 0:
        raise BadInputError(f"{where}: [evaluate] episodes and envs must be >= 1, workers >= 0 (0: one per CPU)")
    if evaluate.policies != "none" and "bc" not in spec.sweep.tasks:
        raise BadInputError(
            f"{where}: [evaluate] rolls out bc policies: add bc to [sweep] tasks or set policies = none"
        )
    if evaluate.world_models not in ("none", "all", "optimal"):
        raise BadInputError(f"{where}: [evaluate] world_models {evaluate.world_models!r}: use none, all or optimal")
    if evaluate.world_models != "none" and "wm" not in spec.sweep.tasks:
        raise BadInputError(
            f"{where}: [evaluate] world_models evaluates wm runs: add wm to [sweep] tasks or set world_models = none"
        )


def _check_fit(fit: FitSection, where: str) -> None:
    value = fit.fixed_e
    if isinstance(value, str) and value not in ("", "known"):
        raise BadInputError(f'{where}: [fit] fixed_e {value!r}: use "known", a loss > 0, or leave it out')
    if not isinstance(value, str) and not (math.isfinite(value) and value > 0):
        raise BadInputError(f"{where}: [fit] fixed_e {value!r}: an irreducible loss must be > 0")


EXAMPLE = """# A roboscale scaling study that runs as written: behaviour cloning on the built-in pointmass
# simulator (pure numpy), three compute budgets with four model sizes each, placed so that every
# budget's IsoFLOP profile brackets its minimum and the IsoFLOP law is fitted. Measured: 5 CPU-minutes
# (1,000 episodes of data, 12 runs, the fits and the report), about 3 minutes on 2 cores. With one seed
# its headline rightly says the exponent is not pinned down: add seeds to narrow it.
#   roboscale study plan study.toml      the runs, total FLOPs and estimated wall time (trains nothing)
#   roboscale study run study.toml       train, record, fit and report (a rerun skips finished runs)
# Values marked "default:" are chosen for this small study; every other value shown is the default.
# Bigger studies: examples/demo.toml (Meta-World MT10, about 10 minutes on 2 cores) and the README.

name = "my-study"
# out = "studies/my-study"          # study folder: run store (study.db), runs, data, report

[data]
# path = "data/mt10"                # an existing LeRobot v3 dataset, or generate one:
generate = { env = "pointmass", tasks = "reach,push", episodes = 1000, quality = "noise:0.1", seed = 0 }   # default: none
# e.g. generate = { env = "metaworld", tasks = "mt10", episodes = 1200, quality = "noise:0.1", seed = 0 }
# (Meta-World needs its own budgets and widths: start from examples/demo.toml)

[sweep]
tasks = ["bc"]                      # bc: predict actions; wm: predict the next observation
tokenizers = ["uniform:64"]         # default: ["uniform:256"]; uniform:BINS, quantile:BINS, continuous; @K = K tokens per observation
observation = "state"               # state, image (camera frames; tokenizers are then patch:P or vq:K@T) or image+state
action_tokenizer = ""               # empty: the state tokenizer's kind and bins (e.g. "uniform:64")
widths = [4, 6, 8, 12, 16, 24, 32]  # default: [16, 24, 32, 48, 64, 96, 128]; the model ladder (d_model), depth = d_model / 32
budgets = [2.5e10, 6e10, 1.5e11]    # default: none; compute budgets in FLOPs (the smallest width, 4, is best below 2.5e10)
# budget_range = [1e11, 1e12]       # or log-spaced budgets over a range (the default when budgets is empty) ...
# budget_count = 3                  # ... this many of them
sizes_per_budget = 4                # default: 5; ladder sizes per budget, nearest the expected optimum
tokens_per_param = 800.0            # default: 20.0; prior for the expected optimum, N* = sqrt(C / (k * 800)), k = C/(N D)
seeds = [0]
min_steps = 50                      # runs with fewer optimiser steps are left out
max_epochs = 30.0                   # default: 1.0; runs needing more passes over the data are left out (small data: repeats allowed)
holdout_budget = false              # also train one budget 10x the largest, only to check the forecast

[train]
context_steps = 8                   # timesteps per sequence
batch_size = 32                     # default: 64; sequences per step
eval_points = 8                     # default: 16; log-spaced validation points per run (the frontier's learning curves)
eval_windows = 256                  # default: 1024; validation windows per evaluation (see bench/noise_budget.py)
flops_convention = "exact"          # exact, total (6N) or non_embedding (6N, Kaplan)
lr_scale = 1.0                      # multiplies the learning rate
lr = "rule"                         # "rule" (the default rule), a number, or "tuned" (run `roboscale tune` first)
parametrization = "standard"        # or "mup": learning rates that transfer across widths
base_width = 32                     # muP's reference width, and the width `roboscale tune` trains

[executor]
kind = "local"                      # local worker processes, or "ray"
workers = 0                         # 0: one per CPU
threads = 1                         # threads per run
stack = 16                          # seeds of a run train together, up to this many (1: alone)
# address = "auto"                  # Ray cluster address; empty starts a local Ray instance
retry_failed = false

[tune]                              # `roboscale tune study.toml`: the best lr at base_width -> tune.json
lrs = [1e-3, 3e-3, 1e-2, 3e-2]      # peak learning rates tried
budget = 0.0                        # FLOPs per tuning run; 0: the smallest budget
seeds = [0]

[evaluate]
policies = "none"                   # closed-loop success of the bc runs: none, all, or optimal (best per budget)
episodes = 20                       # per task, on initial configurations the dataset does not contain
seed = 0
envs = 25                           # environments per batched policy call
workers = 0                         # rollout processes; 0: one per CPU
world_models = "none"               # open-loop error of the wm runs vs predicting no change: none, all, optimal

[fit]
fixed_e = "known"                   # default: "" (fitted); E held at the generated data's known noise floor (remove for your own data)
"""
