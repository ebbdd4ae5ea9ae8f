"""What every command of `python -m lib` shares: its exit codes and the error that is printed as one line."""

from __future__ import annotations

EXIT_OK, EXIT_BAD_INPUT, EXIT_STOPPED = 0, 2, 3


class UsageError(Exception):
    """Bad input or configuration: printed as one clear line, exit code 2."""
