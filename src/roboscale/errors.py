"""Errors that the command line turns into one clear line and an exit code."""

from __future__ import annotations


class RoboscaleError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""

    exit_code = 2


class BadInputError(RoboscaleError, ValueError):
    """Input data or options are unusable (exit code 2, before any work starts)."""


class FitDidNotConvergeError(RoboscaleError):
    """The optimiser stopped before it found a minimum; no numbers are reported."""

    exit_code = 1


class RunDivergedError(RoboscaleError):
    """A training run's loss became NaN or infinite; the run is recorded as failed."""

    exit_code = 1


SEED_LIMIT = 2**63
"""Seeds are integers in [0, 2^63): what NumPy, PyTorch and SQLite all accept."""


def check_seed(seed, option: str = "--seed") -> int:
    """``seed`` as an int, or a BadInputError naming ``option`` and the allowed range."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise BadInputError(f"{option} {seed!r}: a seed must be an integer from 0 to 2^63 - 1")
    return seed


def result_or_reason(make):
    """``make()``, or ``{"error": why}`` when the data cannot support it: a fit that is
    reported with its reason instead of stopping a whole analysis. (numpy's
    LinAlgError is a ValueError, so singular systems are caught too.)"""
    try:
        return make()
    except (RoboscaleError, ValueError) as error:
        return {"error": str(error)}
