"""The base of every error that means a user mistake (bad file, field, name, option).

The command line prints these as one line naming the problem; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class SimrealError(ValueError):
    """A user-facing error; the message names the file, field or name at fault."""
