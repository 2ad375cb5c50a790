"""The command line's one error for bad input: adapters.cli.main prints it as one line
and exits with code 2, whichever command raised it."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input on the command line: printed as one line, exit code 2."""
