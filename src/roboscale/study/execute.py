"""Running a study's training runs: local worker processes or a Ray cluster.

Runs that differ only in their seed form one job (up to ``[executor] stack``
models), trained as one batched computation by :func:`roboscale.train.train_batch`;
every other run is a job of its own. Jobs go out largest budget first (the long
ones start early, the short ones fill the gaps). Each worker marks its runs
``running`` in the run store and trains them in their own folders (so an
interrupted run resumes from its checkpoint), and the study process stores each
result as it arrives: the record and learning curve of a finished run, or the
error of a failed one. A failed run never stops the others, not even those in its
own job.
"""

from __future__ import annotations

import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from roboscale.errors import BadInputError
from roboscale.files import available_cpus
from roboscale.study.plan import PlannedRun, stack_runs
from roboscale.study.spec import ExecutorSection
from roboscale.study.store import RunStore


@dataclass(frozen=True)
class JobRun:
    run_id: str
    config: dict
    run_dir: str


@dataclass(frozen=True)
class Job:
    """What a worker needs: plain values only (it crosses process and machine boundaries)."""

    runs: tuple[JobRun, ...]
    """Runs that differ only in their seed, trained together."""
    store: str
    parent_pid: int | None
    """The study process; a local worker stops if it disappears (no orphaned training)."""


@dataclass(frozen=True)
class Outcome:
    run_id: str
    record: dict | None
    error: str | None


def run_job(job: Job) -> list[Outcome]:
    """Train one job's runs in this process (what every worker executes)."""
    import torch

    from roboscale.train import TrainConfig, train_batch

    configs = [TrainConfig.from_dict(run.config) for run in job.runs]
    torch.set_num_threads(configs[0].thread_count())
    store = RunStore(job.store)
    for run in job.runs:
        store.mark_running(run.run_id)

    def stop_if_orphaned(step: int, total: int, metrics: dict) -> None:
        if job.parent_pid is not None and os.getppid() != job.parent_pid:
            raise SystemExit(f"the study process {job.parent_pid} is gone")

    try:
        records = train_batch(configs, [run.run_dir for run in job.runs], progress=stop_if_orphaned)
    except Exception as error:  # noqa: BLE001 - any failure is recorded; the study goes on
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return [Outcome(run.run_id, None, detail) for run in job.runs]
    return [
        Outcome(run.run_id, record, None)
        if record["status"] == "finished"
        else Outcome(run.run_id, None, f"RunDivergedError: {record.get('error')}")
        for run, record in zip(job.runs, records, strict=True)
    ]


def pending_runs(runs: list[PlannedRun], store: RunStore, retry_failed: bool) -> list[PlannedRun]:
    """Runs still to do, largest budget first: not finished (and not failed, unless retrying)."""
    table = store.runs()
    status = dict(zip(table["run_id"], table["status"]))
    wanted = {"planned", "running"} | ({"failed"} if retry_failed else set())
    todo = [run for run in runs if status.get(run.run_id, "planned") in wanted]
    return sorted(todo, key=lambda run: (-run.budget, -run.d_model, run.seed, run.task, run.tokenizer))


Progress = Callable[[Outcome, dict], None]


def execute(
    runs: list[PlannedRun],
    store: RunStore,
    runs_dir: Path,
    executor: ExecutorSection,
    *,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Train every pending run; returns counts of finished and failed runs in this call."""
    todo = pending_runs(runs, store, executor.retry_failed)
    parent = os.getpid() if executor.kind == "local" else None
    jobs = [
        Job(
            tuple(JobRun(run.run_id, run.config.to_dict(), str(runs_dir / run.run_id)) for run in group),
            str(store.path),
            parent,
        )
        for group in stack_runs(todo, executor.stack)
    ]
    counts = {"finished": 0, "failed": 0}
    results = _local(jobs, executor) if executor.kind == "local" else _ray(jobs, executor)
    for outcome in (outcome for result in results for outcome in result):
        if outcome.record is not None:
            store.record_finished(outcome.run_id, outcome.record)
            counts["finished"] += 1
        else:
            store.record_failed(outcome.run_id, outcome.error or "unknown error")
            counts["failed"] += 1
        if progress is not None:
            progress(outcome, counts)
    return counts


def local_workers(executor: ExecutorSection) -> int:
    if executor.workers:
        return executor.workers
    return max(1, available_cpus() // executor.threads)


def _local(jobs: list[Job], executor: ExecutorSection) -> Iterator[list[Outcome]]:
    if not jobs:
        return
    workers = min(local_workers(executor), len(jobs))
    # spawn, not fork: a forked child inheriting an initialised OpenMP runtime can hang.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers) as pool:
        yield from pool.imap_unordered(run_job, jobs, chunksize=1)


def check_cluster(executor: ExecutorSection) -> None:
    """For a Ray executor with an address: connect once, before any work, so a missing
    cluster is one line (BadInputError) instead of a traceback after the data is made."""
    if executor.kind != "ray" or not executor.address:
        return
    ray = _import_ray()
    if ray.is_initialized():
        return
    _connect(ray, executor)
    ray.shutdown()


def _import_ray():
    try:
        import ray
    except ModuleNotFoundError:
        raise BadInputError("the Ray executor needs Ray: pip install 'roboscale[ray]'") from None
    return ray


def _connect(ray, executor: ExecutorSection) -> None:
    options = (
        {"address": executor.address} if executor.address else {"num_cpus": local_workers(executor) * executor.threads}
    )
    try:
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", **options)
    except ConnectionError:
        raise BadInputError(
            f"no Ray cluster found at address {executor.address!r}: start one with `ray start --head` "
            "(or leave the address empty to start a local Ray instance)"
        ) from None


def _ray(jobs: list[Job], executor: ExecutorSection) -> Iterator[list[Outcome]]:
    ray = _import_ray()
    if not jobs:
        return
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, executor)
    try:
        remote = ray.remote(num_cpus=executor.threads, max_retries=0)(run_job)
        pending = [remote.remote(job) for job in jobs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()
