"""The one error a dataset operation raises for bad input or a damaged dataset; it names the file or feature."""

from __future__ import annotations


class DatasetError(Exception):
    """A dataset problem a user can act on (shown as one line by the `simreal` command)."""
