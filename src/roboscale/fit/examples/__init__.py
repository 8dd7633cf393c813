"""Bundled runs tables from published papers (see README.md in this folder)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

EXAMPLES = {
    "hoffmann2022": "hoffmann2022_chinchilla.csv",
    "atari_bc": "atari_bc_tuyls2023.csv",
    "ye2024_mixing": "ye2024_mixing_70M.csv",
    "muennighoff2023": "muennighoff2023_runs_fit182.csv",
}


def example_path(name: str) -> Path:
    """Path of a bundled example runs table: ``hoffmann2022``, ``atari_bc``, ``ye2024_mixing`` or ``muennighoff2023``."""
    if name not in EXAMPLES:
        raise KeyError(f"no example {name!r}; choose one of {', '.join(EXAMPLES)}")
    return Path(str(files(__package__).joinpath(EXAMPLES[name])))
