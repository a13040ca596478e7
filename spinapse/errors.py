"""Errors shown to a user without a traceback; importable by every verb and package without an
import running back up to the command line."""

from __future__ import annotations


class UsageError(Exception):
    """A user-facing error (bad configuration, missing file): printed without a traceback."""
