"""Where CLI output goes: results on stdout, remarks and progress on stderr."""

from __future__ import annotations

from typing import Self

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


def note(message: str) -> None:
    """A side remark on stderr, so that stdout stays clean for --json."""
    Console(stderr=True).print(message, style="dim", soft_wrap=True, highlight=False, markup=False)


def make_console() -> Console:
    """Console for results: the terminal's width, or 120 columns when piped."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=120)


def bar_columns(label: str, *middle) -> tuple:
    """Columns of a progress bar: the bold ``label``, the bar, ``middle``, time spent and time left."""
    return (
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(bar_width=24),
        *middle,
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


class LateProgress:
    """A progress bar on stderr that appears at its first update, once the work has
    started: an error raised while the input is still being checked is then printed
    alone, without an empty bar above it.

    ``with LateProgress(columns, rate=0.0) as bar: bar.update(completed=1, total=10)``;
    ``fields`` are the task fields the columns read, with their values before the first update.
    """

    def __init__(self, columns: tuple, **fields) -> None:
        self._columns = columns
        self._fields = fields
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> Self:
        return self

    def update(self, **values) -> None:
        if self._progress is None:
            self._progress = Progress(*self._columns, console=Console(stderr=True))
            self._task = self._progress.add_task("", total=None, **self._fields)
            self._progress.update(self._task, **values)  # the first frame already shows them
            self._progress.start()
            return
        self._progress.update(self._task, **values)

    def __exit__(self, *exception) -> None:
        if self._progress is not None:
            self._progress.stop()
