"""The run store: one SQLite database per study (WAL mode), safe for several writers.

Tables:

- ``study``: key/value, the study's configuration, the roboscale version and the
  plan a report needs (:class:`PlanRecord`: planned runs, ladder, FLOP convention);
- ``runs``: one row per run, keyed by a hash of its full training configuration,
  with its status (planned, running, finished, failed), headline numbers (N, D, C,
  losses, and ``loss_se``: the validation loss's episode-clustered standard error),
  the error of a failed run and the whole run record as JSON;
- ``curves``: each run's learning curve, one row per evaluation point (``val_loss``
  with its standard error ``val_loss_se``);
- ``evaluations``: closed-loop results of bc runs (success rate with its Wilson
  interval, return, length), keyed by run and evaluation settings.
- ``open_loop``: open-loop results of wm runs (``WorldModelEvaluation.to_dict()``
  without its starts: error and persistence baseline by horizon), keyed by run and
  evaluation settings.

Every write is one short transaction (``BEGIN IMMEDIATE`` with a busy timeout), so
two processes writing at once wait for each other instead of losing rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError

SCHEMA = """
CREATE TABLE IF NOT EXISTS study (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    task TEXT NOT NULL,
    tokenizer TEXT NOT NULL,
    seed INTEGER NOT NULL,
    d_model INTEGER NOT NULL,
    n_layer INTEGER NOT NULL,
    budget REAL NOT NULL,
    holdout INTEGER NOT NULL DEFAULT 0,
    planned_flops REAL,
    N INTEGER,
    D REAL,
    C REAL,
    loss REAL,
    loss_se REAL,
    train_loss REAL,
    epochs REAL,
    wall_seconds REAL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    config TEXT NOT NULL,
    record TEXT,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS curves (
    run_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    tokens REAL NOT NULL,
    flops REAL NOT NULL,
    train_loss REAL,
    val_loss REAL,
    val_loss_se REAL,
    lr REAL,
    seconds REAL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE IF NOT EXISTS evaluations (
    run_id TEXT NOT NULL,
    settings TEXT NOT NULL,
    success REAL NOT NULL,
    ci_low REAL NOT NULL,
    ci_high REAL NOT NULL,
    episodes INTEGER NOT NULL,
    mean_return REAL,
    mean_length REAL,
    failures INTEGER NOT NULL DEFAULT 0,
    result TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (run_id, settings)
);
CREATE TABLE IF NOT EXISTS open_loop (
    run_id TEXT NOT NULL,
    settings TEXT NOT NULL,
    result TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (run_id, settings)
);
"""

ADDED_COLUMNS = {
    "runs": {"loss_se": "REAL", "axis": "TEXT", "level": "TEXT", "split_losses": "TEXT"},
    "curves": {"val_loss_se": "REAL"},
}
"""Columns added after the first release, by table: a store made before them gets them
(empty, read as NaN) when it is opened. ``axis`` and ``level`` (JSON): a data-axes run's axes
and level (see :func:`roboscale.study.data_levels.level_columns`); ``split_losses`` (JSON): the
final loss on every validation split and held-out tasks (the record's ``final_split_losses``)."""

AXIS_COLUMNS = ("axis", "episodes", "unique_episodes", "repetitions", "train_tasks", "quality", "noise")
"""The data-axes columns of every run (see :meth:`RunStore.axis_columns`), before the per-source ones."""

RUN_COLUMNS = (
    "run_id",
    "status",
    "task",
    "tokenizer",
    "seed",
    "d_model",
    "n_layer",
    "budget",
    "holdout",
    "planned_flops",
    "N",
    "D",
    "C",
    "loss",
    "loss_se",
    "train_loss",
    "epochs",
    "wall_seconds",
    "error",
    "attempts",
)

SUCCESS_COLUMNS = ("success", "success_ci_low", "success_ci_high", "success_episodes")
"""Columns :meth:`RunStore.runs_with_success` adds to the runs table (floats: NaN where not evaluated)."""


@dataclass(frozen=True)
class LadderSize:
    """One model size of a study's ladder, for one task and tokenizer."""

    task: str
    tokenizer: str
    d_model: int
    n_layer: int
    N: int
    """Parameters (total)."""
    flops_per_token: float = float("nan")
    """Training FLOPs per token under the study's FLOP convention (NaN in stores made
    before it was recorded): a run of this width has ``C = flops_per_token * D``."""

    @property
    def flops_per_param_token(self) -> float:
        """``k`` of ``C = k N D`` for this width (FLOPs per parameter per token)."""
        return self.flops_per_token / self.N


@dataclass(frozen=True)
class PlanRecord:
    """What a report needs of the plan, stored when the study is prepared: with it a
    report is made from ``study.db`` alone (no re-planning, no dataset)."""

    dataset: str
    """The dataset folder the runs trained on (for the report's record only)."""
    planned: tuple[str, ...]
    """Run ids of the active plan (the store may also hold runs of earlier plans)."""
    ladder: tuple[LadderSize, ...]
    flops_convention: str
    """How the runs' C was counted: exact, total (6N) or non_embedding (6N, Kaplan)."""
    warnings: tuple[str, ...] = ()
    known_floors: tuple[dict, ...] = ()
    """The known (analytic) floor of each (task, tokenizer) group, computed from the dataset
    when the study was prepared: ``task``, ``tokenizer`` and the fields of
    :class:`roboscale.data.floors.KnownFloor` (empty in stores made before floors existed)."""

    def sizes(self) -> dict[tuple[str, str], dict[int, int]]:
        """Parameters of every ladder width, by (task, tokenizer)."""
        out: dict[tuple[str, str], dict[int, int]] = {}
        for size in self.ladder:
            out.setdefault((size.task, size.tokenizer), {})[size.d_model] = size.N
        return out

    def compute_convention(self) -> dict:
        """The study's FLOP convention and each ladder width's planned ``k`` of
        ``C = k N D`` (FLOPs per parameter per token), by "task · tokenizer" label, for
        the report: known from the model shapes before any run trains."""
        planned: dict[str, dict[str, float]] = {}
        for size in self.ladder:
            planned.setdefault(f"{size.task} · {size.tokenizer}", {})[str(size.d_model)] = size.flops_per_param_token
        return {"flops_convention": self.flops_convention, "planned_k_by_width": planned}

    def n_layers(self) -> dict[int, int]:
        """Layers of every ladder width (the ladder rule: the same for every task)."""
        return {size.d_model: size.n_layer for size in self.ladder}

    def floors(self) -> dict[tuple[str, str], dict]:
        """The known floor (``loss``, ``per_dim``, ``kind``, ``note``, ``validation``) by (task, tokenizer)."""
        return {
            (floor["task"], floor["tokenizer"]): {
                key: floor.get(key) for key in ("loss", "per_dim", "kind", "note", "validation")
            }
            for floor in self.known_floors
        }

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PlanRecord:
        return cls(
            dataset=values["dataset"],
            planned=tuple(values["planned"]),
            ladder=tuple(LadderSize(**size) for size in values["ladder"]),
            flops_convention=values["flops_convention"],
            warnings=tuple(values.get("warnings", ())),
            known_floors=tuple(values.get("known_floors", ())),
        )


class RunStore:
    """The study's SQLite database at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as connection:
                connection.executescript(SCHEMA)
            with self._transaction() as connection:  # one writer at a time: no column added twice
                _add_missing_columns(connection)
        except sqlite3.DatabaseError as error:
            raise BadInputError(
                f"{self.path} is not a readable run store (SQLite: {error}): restore it from a backup, "
                "or move it away and run the study again"
            ) from None

    @contextmanager
    def _connect(self):
        connection = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=60000")
            yield connection
        finally:
            connection.close()

    @contextmanager
    def _transaction(self):
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise

    # -- writing ------------------------------------------------------------------
    def set_study(self, values: dict) -> None:
        with self._transaction() as connection:
            for key, value in values.items():
                connection.execute("INSERT OR REPLACE INTO study (key, value) VALUES (?, ?)", (key, json.dumps(value)))

    def set_plan(self, plan: PlanRecord) -> None:
        self.set_study({"plan": plan.to_dict()})

    def add_planned(self, runs: list[dict]) -> None:
        """Insert planned runs; runs already in the store keep their state."""
        with self._transaction() as connection:
            for run in runs:
                connection.execute(
                    "INSERT OR IGNORE INTO runs (run_id, status, task, tokenizer, seed, d_model, n_layer, budget, "
                    "holdout, planned_flops, config, updated, axis, level) "
                    "VALUES (?, 'planned', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run["run_id"],
                        run["task"],
                        run["tokenizer"],
                        run["seed"],
                        run["d_model"],
                        run["n_layer"],
                        run["budget"],
                        int(run.get("holdout", False)),
                        run.get("planned_flops"),
                        json.dumps(run["config"], sort_keys=True),
                        time.time(),
                        run.get("axis", ""),
                        json.dumps(run.get("level") or {}, sort_keys=True),
                    ),
                )

    def mark_running(self, run_id: str) -> None:
        with self._transaction() as connection:
            connection.execute(
                "UPDATE runs SET status = 'running', attempts = attempts + 1, updated = ? WHERE run_id = ?",
                (time.time(), run_id),
            )

    def record_finished(self, run_id: str, record: dict) -> None:
        """Store a finished run's record and learning curve (replacing any earlier curve)."""
        final = record.get("final", {})
        with self._transaction() as connection:
            connection.execute(
                "UPDATE runs SET status = 'finished', N = ?, D = ?, C = ?, loss = ?, loss_se = ?, train_loss = ?, "
                "epochs = ?, wall_seconds = ?, error = NULL, record = ?, split_losses = ?, updated = ? WHERE run_id = ?",
                (
                    record["N"],
                    record["D"],
                    record["C"],
                    final.get("val_loss"),
                    final.get("val_loss_se"),
                    final.get("train_loss"),
                    record.get("epochs"),
                    record.get("wall_seconds"),
                    json.dumps(record),
                    json.dumps(record.get("final_split_losses") or {}),
                    time.time(),
                    run_id,
                ),
            )
            connection.execute("DELETE FROM curves WHERE run_id = ?", (run_id,))
            connection.executemany(
                "INSERT INTO curves (run_id, step, tokens, flops, train_loss, val_loss, val_loss_se, lr, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id,
                        p["step"],
                        p["tokens"],
                        p["flops"],
                        p.get("train_loss"),
                        p.get("val_loss"),
                        p.get("val_loss_se"),
                        p.get("lr"),
                        p.get("seconds"),
                    )
                    for p in record.get("learning_curve", [])
                ],
            )

    def record_failed(self, run_id: str, error: str) -> None:
        with self._transaction() as connection:
            connection.execute(
                "UPDATE runs SET status = 'failed', error = ?, updated = ? WHERE run_id = ?",
                (error, time.time(), run_id),
            )

    def record_evaluation(self, run_id: str, settings: str, result: dict) -> None:
        """Store a closed-loop evaluation (``PolicyEvaluation.to_dict()``) of a run."""
        mean = result["mean"]
        with self._transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO evaluations (run_id, settings, success, ci_low, ci_high, episodes, "
                "mean_return, mean_length, failures, result, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    settings,
                    mean["success_rate"],
                    mean["ci_low"],
                    mean["ci_high"],
                    mean["episodes"],
                    mean["mean_return"],
                    mean["mean_length"],
                    mean["failures"],
                    json.dumps({key: value for key, value in result.items() if key != "episodes"}),
                    time.time(),
                ),
            )

    def record_open_loop(self, run_id: str, settings: str, result: dict) -> None:
        """Store an open-loop evaluation (``WorldModelEvaluation.to_dict()``) of a wm run."""
        kept = {key: value for key, value in result.items() if key != "starts"}
        with self._transaction() as connection:
            connection.execute(
                "INSERT OR REPLACE INTO open_loop (run_id, settings, result, updated) VALUES (?, ?, ?, ?)",
                (run_id, settings, json.dumps(kept), time.time()),
            )

    # -- reading ------------------------------------------------------------------
    def study(self) -> dict:
        with self._connect() as connection:
            rows = connection.execute("SELECT key, value FROM study").fetchall()
        return {key: json.loads(value) for key, value in rows}

    def plan(self) -> PlanRecord:
        """The plan stored when the study was prepared (see :class:`PlanRecord`)."""
        saved = self.study().get("plan")
        if saved is None:
            raise BadInputError(
                f"{self.path} holds no study plan (made by an older roboscale, or never prepared): "
                "run `roboscale study run FILE` once more to record it (finished runs are kept)"
            )
        return PlanRecord.from_dict(saved)

    def runs(self, status: str | None = None) -> pd.DataFrame:
        """The runs table (without the JSON columns), optionally of one status."""
        query = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
        params: tuple = ()
        if status is not None:
            query += " WHERE status = ?"
            params = (status,)
        with self._connect() as connection:
            frame = pd.read_sql_query(
                query + " ORDER BY budget, task, tokenizer, d_model, seed", connection, params=params
            )
        return _as_float(frame, ADDED_COLUMNS["runs"])

    def configs(self) -> dict[str, dict]:
        with self._connect() as connection:
            rows = connection.execute("SELECT run_id, config FROM runs").fetchall()
        return {run_id: json.loads(config) for run_id, config in rows}

    def records(self) -> dict[str, dict]:
        with self._connect() as connection:
            rows = connection.execute("SELECT run_id, record FROM runs WHERE record IS NOT NULL").fetchall()
        return {run_id: json.loads(record) for run_id, record in rows}

    def curves(self) -> pd.DataFrame:
        with self._connect() as connection:
            frame = pd.read_sql_query("SELECT * FROM curves ORDER BY run_id, step", connection)
        return _as_float(frame, ADDED_COLUMNS["curves"])

    def evaluations(self, settings: str | None = None) -> pd.DataFrame:
        """Closed-loop results (one row per run and settings), optionally of one setting."""
        query = (
            "SELECT run_id, settings, success, ci_low, ci_high, episodes, mean_return, mean_length, failures "
            "FROM evaluations"
        )
        params: tuple = ()
        if settings is not None:
            query += " WHERE settings = ?"
            params = (settings,)
        with self._connect() as connection:
            return pd.read_sql_query(query + " ORDER BY run_id", connection, params=params)

    def open_loop(self, settings: str | None = None) -> dict[str, dict]:
        """Open-loop results by run_id (the stored dicts), optionally of one setting."""
        query, params = "SELECT run_id, result FROM open_loop", ()
        if settings is not None:
            query, params = query + " WHERE settings = ?", (settings,)
        with self._connect() as connection:
            rows = connection.execute(query + " ORDER BY run_id, updated", params).fetchall()
        return {run_id: json.loads(result) for run_id, result in rows}

    def runs_with_success(self, settings: str) -> pd.DataFrame:
        """The runs table (:meth:`runs`) with each run's closed-loop evaluation made with
        ``settings``: ``success`` (the fraction of episodes that solved their task, 0 to 1),
        its Wilson interval ``success_ci_low`` and ``success_ci_high``, and
        ``success_episodes`` (episodes rolled out); NaN for a run not evaluated so."""
        evaluations = self.evaluations(settings)[["run_id", "success", "ci_low", "ci_high", "episodes"]]
        evaluations = evaluations.rename(
            columns={"ci_low": "success_ci_low", "ci_high": "success_ci_high", "episodes": "success_episodes"}
        )
        runs = self.runs().merge(evaluations, on="run_id", how="left")
        return runs.astype({column: np.float64 for column in SUCCESS_COLUMNS})

    def axis_columns(self) -> pd.DataFrame:
        """Every run's data-axes columns, by ``run_id``: ``axis`` ("" for IsoFLOP runs),
        ``episodes``, ``unique_episodes``, ``repetitions`` (passes over the data), ``train_tasks``,
        ``quality``, ``noise``, per source s ``episodes_<s>``, ``r_<s>`` (share of the training
        episodes) and ``loss_<s>`` (final loss on s's validation split), and ``heldout_loss``
        (final loss on held-out tasks); NaN where a run has no such number."""
        with self._connect() as connection:
            rows = connection.execute("SELECT run_id, axis, level, split_losses, epochs, loss FROM runs").fetchall()
        table = [_axis_row(*row) for row in rows]
        sources = list(dict.fromkeys(s for row in table for s in row.pop("_sources")))
        columns = ["run_id", *AXIS_COLUMNS]
        columns += [f"{kind}_{s}" for s in sources for kind in ("episodes", "r", "loss")] + ["heldout_loss"]
        frame = pd.DataFrame(table, columns=columns)
        numeric = [c for c in columns if c not in ("run_id", "axis", "quality")]
        return frame.astype({column: np.float64 for column in numeric})

    def runs_for_export(self, settings: str) -> pd.DataFrame:
        """:meth:`runs_with_success` with :meth:`axis_columns`: the table `roboscale runs export` writes."""
        return self.runs_with_success(settings).merge(self.axis_columns(), on="run_id", how="left")

    def status_counts(self) -> dict[str, int]:
        with self._connect() as connection:
            rows = connection.execute("SELECT status, COUNT(*) FROM runs GROUP BY status").fetchall()
        return dict(rows)


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    """Bring a store made by an older roboscale up to the schema (see ADDED_COLUMNS)."""
    for table_name, columns in ADDED_COLUMNS.items():
        present = {row[1] for row in connection.execute(f"PRAGMA table_info({table_name})")}
        for name, kind in columns.items():
            if name not in present:
                connection.execute(f"ALTER TABLE {table_name} ADD COLUMN {name} {kind}")


def _as_float(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Added numeric columns as floats: rows written before a column existed read as NaN (not None)."""
    for name, kind in columns.items():
        if kind == "REAL" and name in frame:
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    return frame


def _axis_row(run_id: str, axis, level, split_losses, epochs, loss) -> dict:
    """One run's :meth:`RunStore.axis_columns` (with ``_sources``: its sources, in order)."""
    level = json.loads(level) if level else {}
    losses = json.loads(split_losses) if split_losses else {}
    nan = float("nan")
    by_source = level.get("episodes_by_source") or {}
    total = sum(by_source.values())
    row = {
        "run_id": run_id,
        "axis": axis or "",
        "episodes": level.get("episodes", nan),
        "unique_episodes": level.get("unique_episodes", nan),
        "repetitions": level.get("repetitions", nan if epochs is None else epochs),
        "train_tasks": level.get("train_tasks", nan),
        "quality": level.get("quality", ""),
        "noise": level.get("noise", nan),
        "heldout_loss": losses.get("heldout_tasks", nan),
        "_sources": list(by_source),
    }
    for source, count in by_source.items():
        row[f"episodes_{source}"] = count
        row[f"r_{source}"] = count / total if total else nan
        reference = source == level.get("reference")
        row[f"loss_{source}"] = (
            (loss if loss is not None else nan) if reference else losses.get(f"validation.{source}", nan)
        )
    return row
