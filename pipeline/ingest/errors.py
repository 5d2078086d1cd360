"""Errors that stop a run because an extract as a whole cannot be trusted."""


class ExtractError(Exception):
    """A one-line, provider-facing message naming the file, line or column and the fix."""
