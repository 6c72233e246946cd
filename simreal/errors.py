"""Exceptions that mean a user mistake: shown as one clear line, never as a traceback."""

from __future__ import annotations

from sim.errors import SimrealError

# every project error derives from SimrealError; a missing input file is the user's too
USER_ERRORS: tuple[type[BaseException], ...] = (SimrealError, FileNotFoundError)
