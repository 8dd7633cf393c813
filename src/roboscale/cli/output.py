"""Where CLI output goes: results on stdout, remarks and progress on stderr."""

from __future__ import annotations

from rich.console import Console


def note(message: str) -> None:
    """A side remark on stderr, so that stdout stays clean for --json."""
    Console(stderr=True).print(message, style="dim", soft_wrap=True, highlight=False, markup=False)


def make_console() -> Console:
    """Console for results: the terminal's width, or 120 columns when piped."""
    probe = Console()
    return probe if probe.is_terminal else Console(width=120)
