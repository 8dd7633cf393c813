"""The runs table: one row per trained model (or per learning-curve point).

Canonical columns, all positive and finite:

- ``N``: parameters;
- ``D``: training tokens (or samples) seen;
- ``C``: training compute in FLOPs;
- ``loss``: the loss being scaled (e.g. validation nats per token);

plus any other columns (task, tokenizer, seed, run id, ...), kept as they are.
When one of N, D, C is missing it is derived from the other two with
``C = k N D`` (``k = flops_per_param_token``, 6 by default: forward plus backward
pass of a dense model; say another value when your FLOP count differs). With all
three given, the table's ``k`` (which every compute-optimal allocation uses) is
measured from the runs: their median ``C / (N D)`` (see :mod:`roboscale.fit.compute`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from roboscale.errors import BadInputError
from roboscale.fit.compute import DEFAULT_FLOPS_PER_PARAM_TOKEN, ComputeConvention, measure_convention

QUANTITIES = ("N", "D", "C", "loss")
"""The canonical numeric columns of a runs table."""

DESCRIPTIONS = {
    "N": "parameters",
    "D": "training tokens or samples",
    "C": "training FLOPs",
    "loss": "loss",
    "run": "run id",
}

ALIASES: Mapping[str, tuple[str, ...]] = {
    "N": ("n", "params", "n_params", "num_params", "param_count", "parameters", "model_size", "model size"),
    "D": ("d", "tokens", "n_tokens", "training_tokens", "training tokens", "samples", "tokens_seen"),
    "C": ("c", "flops", "compute", "training_flops", "training flop", "training flops", "flop_budget", "flops_so_far"),
    "loss": ("loss", "val_loss", "validation_loss", "eval_loss", "valid_loss"),
    "run": ("run", "run_id", "run_name", "name"),
}
"""Column names recognised without a mapping (compared case-insensitively)."""

CLI_OPTION = {"N": "--n", "D": "--d", "C": "--c", "loss": "--loss", "run": "--run"}


@dataclass(frozen=True)
class RunsTable:
    """A validated runs table: canonical float columns N, D, C, loss plus extras."""

    frame: pd.DataFrame
    source: str = "<table>"
    columns_used: dict[str, str] = field(default_factory=dict)
    """Canonical name -> the source column it came from, or how it was derived."""
    given_flops_per_param_token: float | None = None
    """``k`` of ``C = k N D`` as given by the user (None: measured from the runs)."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Why rows were left out, and how many."""

    @property
    def compute_convention(self) -> ComputeConvention:
        """``k`` of ``C = k N D`` of these rows: measured (median ``C / (N D)`` over
        runs) or given, with its spread over runs."""
        derived = [f"{q} {how}" for q, how in self.columns_used.items() if how.startswith("derived")]
        runs = self.frame["run"].to_numpy() if self.has_runs else None
        return measure_convention(
            self.N, self.D, self.C, runs=runs, given=self.given_flops_per_param_token, assumed="; ".join(derived)
        )

    @property
    def flops_per_param_token(self) -> float:
        """``k`` of ``C = k N D`` (FLOPs per parameter per token) that allocations use."""
        return self.compute_convention.k

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def N(self) -> np.ndarray:
        return self.frame["N"].to_numpy(np.float64)

    @property
    def D(self) -> np.ndarray:
        return self.frame["D"].to_numpy(np.float64)

    @property
    def C(self) -> np.ndarray:
        return self.frame["C"].to_numpy(np.float64)

    @property
    def loss(self) -> np.ndarray:
        return self.frame["loss"].to_numpy(np.float64)

    @property
    def has_runs(self) -> bool:
        """True when a run-id column groups rows into learning curves."""
        return "run" in self.frame.columns

    @property
    def has_curves(self) -> bool:
        """True when some run has several rows: the table holds learning curves."""
        return self.has_runs and bool(self.frame["run"].duplicated().any())

    def column(self, name: str) -> pd.Series:
        """A column by its name in this table or in the source file (``params`` for N)."""
        if name in self.frame.columns:
            return self.frame[name]
        for canonical, source in self.columns_used.items():
            if source == name:
                return self.frame[canonical]
        raise BadInputError(f"column {name!r} not in {self.source}; available columns: {_listing(self.frame.columns)}")

    def subset(self, mask) -> RunsTable:
        """The rows where ``mask`` is true, as a new table."""
        return replace(self, frame=self.frame.loc[np.asarray(mask, dtype=bool)].reset_index(drop=True))

    def groups(self, column: str) -> Iterator[tuple[str, RunsTable]]:
        """Split by the values of ``column`` (sorted), one table per value."""
        keys = self.column(column)
        for key, part in self.frame.groupby(keys.to_numpy(), sort=True):
            yield str(key), replace(self, frame=part.reset_index(drop=True))


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV/TSV, Parquet or JSON(-lines) by file suffix."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"runs file {str(path)!r} not found: check the path")
    if path.is_dir():
        raise BadInputError(f"{str(path)!r} is a folder: give a .csv, .parquet or .jsonl file")
    suffix = path.suffix.lower()
    readers = {
        ".csv": lambda: pd.read_csv(path),
        ".tsv": lambda: pd.read_csv(path, sep="\t"),
        ".parquet": lambda: pd.read_parquet(path),
        ".pq": lambda: pd.read_parquet(path),
        ".jsonl": lambda: pd.read_json(path, lines=True),
        ".ndjson": lambda: pd.read_json(path, lines=True),
        ".json": lambda: _read_json(path),
    }
    if suffix not in readers:
        raise BadInputError(
            f"cannot tell the format of {str(path)!r} from its suffix {suffix or '(none)'!r}: "
            "use .csv, .tsv, .parquet, .jsonl or .json"
        )
    try:
        return readers[suffix]()
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BadInputError(f"could not read {str(path)!r} as {suffix[1:]}: {reason}") from None


def _read_json(path: Path) -> pd.DataFrame:
    try:
        return pd.read_json(path, lines=True)
    except ValueError:
        return pd.read_json(path)


def load_runs(
    source: str | Path | pd.DataFrame | RunsTable,
    *,
    n: str | None = None,
    d: str | None = None,
    c: str | None = None,
    loss: str | None = None,
    run: str | None = None,
    flops_per_param_token: float | None = None,
    drop_invalid: bool = False,
    drop_highest_loss: int = 0,
    min_flops: float | None = None,
    max_flops: float | None = None,
) -> RunsTable:
    """Load and validate a runs table from a file, a DataFrame or a RunsTable.

    ``n``, ``d``, ``c``, ``loss``, ``run`` name the source columns holding N, D, C,
    the loss and the run id; unnamed ones are looked up by common aliases
    (``params``, ``tokens``, ``flops``, ...). Rows with a missing, non-finite, zero
    or negative N, D, C or loss are an error unless ``drop_invalid`` (then they are
    left out and counted in ``dropped``). ``drop_highest_loss`` leaves out that many
    runs with the highest loss (outliers such as diverged runs); ``min_flops`` and
    ``max_flops`` keep only runs within a compute range (FLOPs).
    ``flops_per_param_token``: ``k`` of ``C = k N D`` (FLOPs per parameter per
    token), to derive a missing N, D or C (default 6) and for every allocation; by
    default the allocations use the runs' own median ``C / (N D)``.
    """
    if flops_per_param_token is not None and not flops_per_param_token > 0:
        raise BadInputError(f"flops_per_param_token={flops_per_param_token}: must be > 0 (6 for a dense transformer)")
    if drop_highest_loss < 0:
        raise BadInputError(f"drop_highest_loss={drop_highest_loss}: must be >= 0")
    if isinstance(source, RunsTable):
        frame, name = source.frame, source.source
        if flops_per_param_token is None:
            flops_per_param_token = source.given_flops_per_param_token
    elif isinstance(source, pd.DataFrame):
        frame, name = source, "<table>"
    else:
        frame, name = read_table(source), str(source)
    if len(frame) == 0:
        raise BadInputError(f"the runs table {name} is empty: it needs one row per trained model")

    explicit = {"N": n, "D": d, "C": c, "loss": loss, "run": run}
    found = {q: _find_column(frame, q, explicit[q], name) for q in (*QUANTITIES, "run")}
    out = frame.drop(columns=[col for col in found.values() if col is not None]).copy()
    used: dict[str, str] = {}
    for quantity in QUANTITIES:
        column = found[quantity]
        if column is not None:
            out[quantity] = pd.to_numeric(frame[column], errors="coerce").astype(np.float64)
            used[quantity] = column
    if found["run"] is not None:
        out["run"] = frame[found["run"]].astype(str)
        used["run"] = found["run"]
    _derive_missing(out, used, flops_per_param_token or DEFAULT_FLOPS_PER_PARAM_TOKEN, name)

    dropped: dict[str, int] = {}
    out = _check_values(out, _Origin(frame, name, used, _first_data_line(source)), drop_invalid, dropped)
    if min_flops is not None or max_flops is not None:
        keep = (out["C"] >= (min_flops or 0.0)) & (out["C"] <= (max_flops if max_flops is not None else np.inf))
        dropped["outside the FLOP range"] = int((~keep).sum())
        out = out.loc[keep]
    if drop_highest_loss:
        if drop_highest_loss >= len(out):
            raise BadInputError(
                f"--drop-highest-loss {drop_highest_loss} would drop all {len(out)} runs: use a smaller number"
            )
        out = out.drop(index=out["loss"].nlargest(drop_highest_loss).index)
        dropped["highest loss"] = drop_highest_loss
    if len(out) == 0:
        raise BadInputError(f"no runs left in {name} after filtering: widen --min-flops/--max-flops")
    ordered = [q for q in (*QUANTITIES, "run") if q in out.columns] + [col for col in out.columns if col not in used]
    return RunsTable(
        frame=out[list(dict.fromkeys(ordered))].reset_index(drop=True),
        source=name,
        columns_used=used,
        given_flops_per_param_token=None if flops_per_param_token is None else float(flops_per_param_token),
        dropped={k: v for k, v in dropped.items() if v},
    )


def _find_column(frame: pd.DataFrame, quantity: str, explicit: str | None, name: str) -> str | None:
    if explicit is not None:
        if explicit not in frame.columns:
            raise BadInputError(
                f"column {explicit!r} (given with {CLI_OPTION[quantity]}) is not in {name}; "
                f"available columns: {_listing(frame.columns)}"
            )
        return explicit
    if quantity in frame.columns:
        return quantity
    normalised = {str(col).strip().lower(): col for col in frame.columns}
    for alias in ALIASES[quantity]:
        if alias in normalised:
            return normalised[alias]
    return None


def _derive_missing(out: pd.DataFrame, used: dict[str, str], k: float, name: str) -> None:
    """Fill in one missing of N, D, C from the other two with C = k N D."""
    if "loss" not in out.columns:
        raise BadInputError(_missing_message("loss", out, name))
    missing = [q for q in ("N", "D", "C") if q not in out.columns]
    if len(missing) > 1:
        raise BadInputError(_missing_message(missing[0], out, name, derivable=True))
    if missing == ["C"]:
        out["C"] = k * out["N"] * out["D"]
        used["C"] = f"derived: {k:g} * N * D"
    elif missing == ["D"]:
        out["D"] = out["C"] / (k * out["N"])
        used["D"] = f"derived: C / ({k:g} * N)"
    elif missing == ["N"]:
        out["N"] = out["C"] / (k * out["D"])
        used["N"] = f"derived: C / ({k:g} * D)"


def _missing_message(quantity: str, frame: pd.DataFrame, name: str, derivable: bool = False) -> str:
    hint = " (or two of N, D, C, from which the third is derived)" if derivable else ""
    return (
        f"{name} has no {quantity} column ({DESCRIPTIONS[quantity]}){hint}; "
        f"map yours with {CLI_OPTION[quantity]} COLUMN; available columns: {_listing(frame.columns)}"
    )


@dataclass(frozen=True)
class _Origin:
    """Where the loaded values came from, to point at a bad cell in the user's terms."""

    frame: pd.DataFrame
    """The table as read, before conversion to numbers."""
    name: str
    used: dict[str, str]
    first_data_line: int | None
    """Line number of the first data row in a text file (CSV: 2, below the header)."""

    def cell(self, quantity: str, position: int) -> str:
        """E.g. "line 7, column 'params', has 'abc'" for data row ``position`` (from 0)."""
        if self.first_data_line is not None:
            where = f"line {position + self.first_data_line}"
        else:
            where = f"row {self.frame.index[position]!r}"
        column = self.used.get(quantity, quantity)
        if column not in self.frame.columns:  # derived: the columns it came from are valid
            return f"{where} gives {quantity} = {column}"
        raw = self.frame[column].iloc[position]
        if isinstance(raw, str):
            shown = repr(raw)
        elif pd.isna(raw):
            shown = "no value (an empty cell, or a line with fewer fields than the header)"
        else:
            shown = str(raw.item() if hasattr(raw, "item") else raw)  # -2000000.0, not np.float64(...)
        return f"{where}, column {str(column)!r}, has {shown}"


def _first_data_line(source) -> int | None:
    """The line of the first data row for text formats with one row per line."""
    if isinstance(source, (str, Path)):
        suffix = Path(source).suffix.lower()
        return {".csv": 2, ".tsv": 2, ".jsonl": 1, ".ndjson": 1}.get(suffix)
    return None


def _check_values(out: pd.DataFrame, origin: _Origin, drop_invalid: bool, dropped: dict[str, int]) -> pd.DataFrame:
    bad_any = np.zeros(len(out), dtype=bool)
    for quantity in QUANTITIES:
        values = out[quantity].to_numpy(np.float64)
        bad = ~np.isfinite(values) | (values <= 0)
        if bad.any() and not drop_invalid:
            first = int(np.flatnonzero(bad)[0])
            raise BadInputError(
                f"{int(bad.sum())} of {len(values)} rows of {origin.name} have an invalid {quantity} "
                f"({DESCRIPTIONS[quantity]} must be a finite number > 0; {origin.cell(quantity, first)}): "
                "fix or remove them, or pass --drop-invalid to leave them out"
            )
        bad_any |= bad
    if bad_any.any():
        dropped["invalid (NaN, inf, zero or negative)"] = int(bad_any.sum())
        out = out.loc[~bad_any]
    if len(out) == 0:
        raise BadInputError(f"no valid runs in {origin.name}: every row has an invalid N, D, C or loss")
    return out


def _listing(columns) -> str:
    names = [str(col) for col in columns]
    return ", ".join(names) if names else "(none)"
