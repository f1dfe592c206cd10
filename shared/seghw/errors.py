"""Errors a user can act on: the CLI prints them as one line, never as a traceback."""


class UserError(Exception):
    """Bad input or environment; the message names the file or value at fault."""

    exit_code = 2


class DataError(UserError):
    """The dataset cannot be used (empty, all bad, unpaired files, size mismatch)."""


class ConfigError(UserError):
    """A configuration value is out of range or unknown."""
