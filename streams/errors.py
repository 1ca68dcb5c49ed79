"""User errors: reported as one line on stderr, exit code 2, never a traceback."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Something the user can fix: a bad flag, a missing file, an unreachable broker."""
