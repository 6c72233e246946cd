"""The one error a dataset operation raises for bad input or a damaged dataset; it names the file or feature."""

from __future__ import annotations

from sim.errors import SimrealError


class DatasetError(SimrealError):
    """A dataset problem a user can act on (shown as one line by the `simreal` command)."""
