"""The error every calibration step raises for bad input; the message names the file, view or field and what to do."""

from __future__ import annotations

from sim.errors import SimrealError


class CalibrationError(SimrealError):
    """A calibration input that cannot give a result (shown as one line by the `simreal` command)."""
