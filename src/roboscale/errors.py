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


def result_or_reason(make):
    """``make()``, or ``{"error": why}`` when the data cannot support it: a fit that is
    reported with its reason instead of stopping a whole analysis. (numpy's
    LinAlgError is a ValueError, so singular systems are caught too.)"""
    try:
        return make()
    except (RoboscaleError, ValueError) as error:
        return {"error": str(error)}
