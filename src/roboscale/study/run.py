"""A whole study: prepare the data, plan, run every run durably, fit, report."""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from roboscale import __version__
from roboscale.data import GenerationSpec, generate, open_dataset
from roboscale.errors import BadInputError, RoboscaleError
from roboscale.fit.bootstrap import check_bootstrap_options
from roboscale.study.analyze import analyze
from roboscale.study.data_levels import (
    data_levels,
    derive_levels,
    ensure_sources,
    generation_from_table,
    level_columns,
    reference_name,
)
from roboscale.study.execute import Outcome, check_cluster, execute, pending_runs
from roboscale.study.plan import (
    PlannedRun,
    PreparedLevel,
    StudyPlan,
    empty_plan_message,
    plan_axes,
    plan_study,
    stack_runs,
)
from roboscale.study.spec import StudySpec
from roboscale.study.store import LadderSize, PlanRecord, RunStore
from roboscale.study.tune import tuned_lrs
from roboscale.train import ladder_shape


@dataclass(frozen=True)
class StudyProgress:
    """What :func:`run_study` reports as it goes, for a caller to show (every callback optional)."""

    data: Callable[[int, int, int, int | None], None] | None = None
    """While the dataset is generated: (episodes done, frames, successes, episodes expected or None)."""
    training_started: Callable[[list[list[PlannedRun]], int], None] | None = None
    """Once, before training: the jobs to train (each a list of runs trained together, in the
    order they go out) and the number of the plan's runs already finished."""
    run_done: Callable[[Outcome, dict[str, int]], None] | None = None
    """As each run is recorded: its outcome, and the finished and failed runs so far."""
    training_done: Callable[[dict[str, int]], None] | None = None
    """Once, after training: the finished and failed runs of this call."""
    evaluation_started: Callable[[int], None] | None = None
    """Before closed-loop evaluation, when there are runs to evaluate: how many."""
    run_evaluated: Callable[[int, int, str], None] | None = None
    """After each closed-loop evaluation: (runs evaluated, runs to evaluate, run id)."""


@dataclass(frozen=True)
class StudyResult:
    folder: Path
    plan: StudyPlan
    counts: dict[str, int]
    analysis: dict
    report: Path | None


def generation_spec(spec: StudySpec) -> tuple[GenerationSpec, int]:
    """The validated :class:`GenerationSpec` of ``[data] generate`` and its worker count."""
    return generation_from_table(spec.data.generate, spec.source or "the study", "[data] generate")


def ensure_dataset(spec: StudySpec, *, progress=None) -> str:
    """The study's dataset: the given path (validated), or generated once into the
    study folder from ``[data] generate`` (reused while its settings are unchanged)."""
    if spec.data.path:
        path = Path(spec.data.path)
        if not path.is_absolute() and spec.source:
            path = Path(spec.source).parent / path
        open_dataset(path)
        return str(path.resolve())
    generation, workers = generation_spec(spec)
    path = spec.folder() / "data"
    if path.exists():
        made = open_dataset(path).provenance.get("spec", {})
        if made == generation.to_dict():
            return str(path.resolve())
        raise BadInputError(
            f"{path} was generated with other settings than [data] generate now asks for: "
            "delete it (the runs trained on it will be redone) or use another study name"
        )
    generate(generation, path, workers=workers, progress=progress)
    return str(path.resolve())


def prepare_study(spec: StudySpec, *, calibrate: bool = False, data_progress=None) -> tuple[StudyPlan, RunStore]:
    """Data, plan and run store, ready to execute (nothing is trained). The store keeps
    what a report needs of the plan (:class:`PlanRecord`). ``data_progress``: see
    :attr:`StudyProgress.data`."""
    if spec.train.lr == "tuned":
        tuned_lrs(spec)  # a missing or stale tune.json is refused before any work
    if spec.axes is not None:
        plan = plan_data_axes(spec, calibrate=calibrate, data_progress=data_progress)
        dataset = plan.dataset
    else:
        dataset = ensure_dataset(spec, progress=data_progress)
        plan = plan_study(spec, dataset, calibrate=calibrate)
    if not plan.active:
        raise BadInputError(empty_plan_message(plan))
    store = RunStore(spec.folder() / "study.db")
    store.set_study(
        {
            "name": spec.name,
            "spec": spec.to_dict(),
            "dataset": dataset,
            "roboscale_version": __version__,
            "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        }
    )
    store.set_plan(plan_record(plan, known_floors=study_floors(plan)))
    store.add_planned([run.row() for run in plan.active])
    return plan, store


def plan_data_axes(spec: StudySpec, *, calibrate: bool = False, data_progress=None) -> StudyPlan:
    """A data-axes study's plan: its sources generated (or checked), its levels derived, its runs
    sized on them. ``data_progress``: see :attr:`StudyProgress.data` (every source in turn)."""

    def progress(name: str, *values) -> None:
        data_progress(*values)

    sources = ensure_sources(spec, progress=progress if data_progress is not None else None)
    levels = data_levels(spec)
    datasets = derive_levels(spec, levels, sources)
    names = list(sources)
    prepared = [
        PreparedLevel(
            level.name,
            level.axis,
            datasets[level.name],
            level_columns(level, datasets[level.name], names, reference_name(spec)),
            level.repetitions,
        )
        for level in levels
    ]
    return plan_axes(spec, sources[reference_name(spec)].path, prepared, calibrate=calibrate)


def study_floors(plan: StudyPlan) -> tuple[dict, ...]:
    """The known floor of every (task, tokenizer) group of ``plan`` on its dataset (see
    :mod:`roboscale.data.floors`); a floor that cannot be computed is recorded with its reason."""
    from roboscale.data.floors import known_floor, unknown

    dataset = open_dataset(plan.dataset)
    action_tokenizer = plan.spec.sweep.action_tokenizer or None
    floors = []
    images = plan.spec.sweep.observation != "state"
    for task, tokenizer in plan.ladder:
        try:
            if images and task == "wm":
                floor = unknown("the entropy of the next camera frame's tokens is not known")
            else:  # behaviour cloning's floor is the actions' whatever the model sees
                state_tokenizer = plan.spec.sweep.state_tokenizer if images else tokenizer
                floor = known_floor(dataset, task, state_tokenizer, action_tokenizer=action_tokenizer)
        except RoboscaleError as error:
            floor = unknown(f"not computed: {error}")
        floors.append({"task": task, "tokenizer": tokenizer, **floor.to_dict()})
    return tuple(floors)


def fixed_e_by_group(
    setting: str | float, groups: set[tuple[str, str]], floors: dict[tuple[str, str], dict]
) -> tuple[dict[tuple[str, str], float], list[str]]:
    """The parametric fit's fixed E per (task, tokenizer) of ``groups`` for ``[fit] fixed_e``
    (empty: E is fitted), and a warning for every group whose known floor cannot serve ("known")."""
    if setting == "":
        return {}, []
    if setting != "known":
        return dict.fromkeys(groups, float(setting)), []
    fixed, warnings = {}, []
    for task, tokenizer in sorted(groups):
        floor = floors.get((task, tokenizer)) or {"loss": None, "note": "the study was prepared before floors existed"}
        loss = floor.get("loss")
        if loss is not None and loss > 0:
            fixed[(task, tokenizer)] = float(loss)
        else:
            why = floor.get("note") if loss is None else "it is 0 (a lower bound)"
            warnings.append(
                f'{task} · {tokenizer}: [fit] fixed_e = "known" but no known floor to fix E at ({why}); E is fitted'
            )
    return fixed, warnings


def plan_record(plan: StudyPlan, known_floors: tuple[dict, ...] = ()) -> PlanRecord:
    """What the run store keeps of ``plan`` for the report (see :class:`PlanRecord`);
    ``known_floors``: see :func:`study_floors`."""
    ladder = tuple(
        LadderSize(
            task, tokenizer, width, ladder_shape(width)[0], params, plan.flops_per_token[(task, tokenizer)][width]
        )
        for (task, tokenizer), sizes in plan.ladder.items()
        for width, params in sizes.items()
    )
    return PlanRecord(
        dataset=plan.dataset,
        planned=tuple(run.run_id for run in plan.active),
        ladder=ladder,
        flops_convention=plan.spec.train.flops_convention,
        warnings=tuple(plan.warnings),
        known_floors=tuple(known_floors),
    )


def run_study(
    spec: StudySpec, *, progress: StudyProgress | None = None, bootstrap: int = 1000, write: bool = True
) -> StudyResult:
    """The study pipeline (what `roboscale study run` and `roboscale demo` call): prepare
    the data, plan, train every run not yet finished, evaluate in closed loop, fit and
    write the report. ``progress``: callbacks to show how far it is."""
    check_bootstrap_options(bootstrap, 0.95)
    check_cluster(spec.executor)
    progress = progress or StudyProgress()
    plan, store = prepare_study(spec, data_progress=progress.data)
    if progress.training_started is not None:
        todo = pending_runs(plan.active, store, spec.executor.retry_failed)
        progress.training_started(stack_runs(todo, spec.executor.stack), len(plan.active) - len(todo))
    counts = execute(plan.active, store, spec.folder() / "runs", spec.executor, progress=progress.run_done)
    if progress.training_done is not None:
        progress.training_done(counts)
    errors = evaluate_study(spec, plan, store, progress=progress)
    analysis = analyze_study(spec, plan, store, bootstrap=bootstrap, warnings=errors)
    report = write_study_report(spec, analysis) if write else None
    return StudyResult(spec.folder(), plan, counts, analysis, report)


def evaluation_settings(spec: StudySpec) -> str:
    """The closed-loop settings a stored evaluation was made with (results depend on all three)."""
    e = spec.evaluate
    return f"closed-loop episodes={e.episodes} seed={e.seed} envs={e.envs}"


OPEN_LOOP = {"horizons": (1, 5, 20), "episodes": 50, "starts_per_episode": 4}
"""The open-loop evaluation of a study's wm runs: horizons (steps), validation episodes, starts per episode."""
OPEN_LOOP_SETTINGS = "open-loop horizons={} episodes={} starts={}".format(
    ",".join(map(str, OPEN_LOOP["horizons"])), OPEN_LOOP["episodes"], OPEN_LOOP["starts_per_episode"]
)
"""The key of a stored open-loop evaluation (results depend on all three)."""


def runs_to_evaluate(spec: StudySpec, plan: StudyPlan, store: RunStore, task: str = "bc") -> list[str]:
    """Finished runs of ``task`` that ``[evaluate]`` asks for (``policies`` for bc, ``world_models``
    for wm) and that have no evaluation with the current settings yet (largest budget first)."""
    choice = spec.evaluate.policies if task == "bc" else spec.evaluate.world_models
    if choice == "none":
        return []
    runs = store.runs("finished")
    runs = runs[(runs["task"] == task) & runs["run_id"].isin({run.run_id for run in plan.active})]
    if choice == "optimal" and len(runs):
        runs = runs.loc[runs.groupby(["tokenizer", "budget"])["loss"].idxmin()]
    if task == "bc":
        done = set(store.evaluations(evaluation_settings(spec))["run_id"])
    else:
        done = set(store.open_loop(OPEN_LOOP_SETTINGS))
    runs = runs.sort_values(["budget", "d_model"], ascending=False)
    return [run_id for run_id in runs["run_id"] if run_id not in done]


def evaluate_study(
    spec: StudySpec, plan: StudyPlan, store: RunStore, *, progress: StudyProgress | None = None
) -> list[str]:
    """Closed-loop evaluation of the study's bc runs and open-loop evaluation of its wm runs
    (see ``[evaluate]``), each stored in the run store as it finishes; a study that is
    interrupted resumes where it stopped. Returns the errors of runs that could not be
    evaluated (the study goes on)."""
    return _evaluate_policies(spec, plan, store, progress or StudyProgress()) + _evaluate_world_models(
        spec, plan, store
    )


def _evaluate_policies(spec: StudySpec, plan: StudyPlan, store: RunStore, progress: StudyProgress) -> list[str]:
    from roboscale.evaluate import evaluate_policy
    from roboscale.study.execute import local_workers

    todo = runs_to_evaluate(spec, plan, store)
    if todo and progress.evaluation_started is not None:
        progress.evaluation_started(len(todo))
    workers = spec.evaluate.workers or local_workers(spec.executor)
    settings = evaluation_settings(spec)
    errors = []
    for done, run_id in enumerate(todo, start=1):
        try:
            result = evaluate_policy(
                spec.folder() / "runs" / run_id,
                episodes=spec.evaluate.episodes,
                seed=spec.evaluate.seed,
                envs=spec.evaluate.envs,
                workers=workers,
            )
        except RoboscaleError as error:
            errors.append(f"closed-loop evaluation failed for {run_id}: {error}")
        else:
            store.record_evaluation(run_id, settings, result.to_dict())
        if progress.run_evaluated is not None:
            progress.run_evaluated(done, len(todo), run_id)
    return errors


def _evaluate_world_models(spec: StudySpec, plan: StudyPlan, store: RunStore) -> list[str]:
    """Open-loop error of the wm runs ``[evaluate] world_models`` asks for, each against the
    persistence baseline (no simulator: a few seconds per small model)."""
    from roboscale.evaluate import evaluate_world_model

    errors = []
    for run_id in runs_to_evaluate(spec, plan, store, "wm"):
        try:
            result = evaluate_world_model(spec.folder() / "runs" / run_id, **OPEN_LOOP)
        except RoboscaleError as error:
            errors.append(f"open-loop evaluation failed for {run_id}: {error}")
        else:
            store.record_open_loop(run_id, OPEN_LOOP_SETTINGS, result.to_dict())
    return errors


def analyze_study(
    spec: StudySpec,
    plan: StudyPlan | None,
    store: RunStore,
    *,
    bootstrap: int = 1000,
    warnings: list[str] | None = None,
) -> dict:
    """Every fit and number of the report, from the run store (``warnings``: to show too).
    ``plan``: None reads what the store kept of the plan, so a report needs only ``study.db``."""
    check_bootstrap_options(bootstrap, 0.95)
    recorded = store.plan() if plan is None else plan_record(plan)
    # Floors were computed from the dataset when the study was prepared; old stores have none.
    floors = PlanRecord.from_dict(store.study()["plan"]).floors() if "plan" in store.study() else {}
    fixed_e, fixed_e_warnings = fixed_e_by_group(spec.fit.fixed_e, set(recorded.sizes()), floors)
    planned = set(recorded.planned)
    runs = store.runs()
    if spec.axes is not None:  # the data analysis reads the axis columns (an IsoFLOP study's runs stay as they were)
        runs = runs.merge(store.axis_columns(), on="run_id", how="left")
    runs = runs[runs["run_id"].isin(planned)]
    info = {
        "name": spec.name,
        "path": str(spec.folder()),
        "dataset": recorded.dataset,
        "command": store.study().get("command", ""),
        "settings": spec.to_dict(),
        "compute_convention": recorded.compute_convention(),
    }
    evaluations = store.evaluations(evaluation_settings(spec))
    return analyze(
        runs,
        store.curves(),
        study=info,
        ladder=recorded.sizes(),
        n_layers=recorded.n_layers(),
        bootstrap=bootstrap,
        warnings=[
            *recorded.warnings,
            *fixed_e_warnings,
            *(warnings or []),
        ],
        evaluations=evaluations[evaluations["run_id"].isin(planned)],
        open_loop={
            run_id: result for run_id, result in store.open_loop(OPEN_LOOP_SETTINGS).items() if run_id in planned
        },
        known_floors=floors,
        fixed_E=fixed_e,
        data_reference=reference_name(spec) if spec.axes is not None else None,
    )


def write_study_report(spec: StudySpec, analysis: dict) -> Path:
    from roboscale.report import write_report

    return write_report(analysis, spec.folder() / "report")


def load_analysis(folder: Path) -> dict:
    return json.loads((folder / "report" / "report.json").read_text())
