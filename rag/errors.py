"""The project's own user-facing errors: the CLI and the UI report these as one line.

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class RagError(Exception):
    """A problem the user can fix (bad setting, missing model, broken index, ...)."""


class SettingsError(RagError, ValueError):
    """A setting has a wrong value, an unknown name, or names an unknown preset."""
