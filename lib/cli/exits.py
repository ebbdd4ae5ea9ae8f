"""The exit codes of `python -m lib`, in one place: what a pipeline reads without parsing the JSON.

| code | name              | when                                                                                |
|------|-------------------|-------------------------------------------------------------------------------------|
| 0    | EXIT_OK           | every row has a final state and none failed (answered, or skipped as asked)         |
| 2    | EXIT_BAD_INPUT    | usage error, bad input or configuration: one line on stderr naming what is wrong;   |
|      |                   | checked before the data dir is opened, so nothing was sent or written               |
| 3    | EXIT_STOPPED      | stopped with rows pending (paused, budget, quota, key, model, rate limits with      |
|      |                   | --give-up-after, an endpoint that is down or refuses every row, Ctrl-C), or every   |
|      |                   | row sent failed; run the same command again to go on once the cause is fixed        |
| 4    | EXIT_SOME_FAILED  | finished, but some rows failed (each with its reason in the output);                |
|      |                   | `run --retry-failed` sends them again                                               |

Every command that runs rows (run, fetch, compare) decides with `rows_exit`; exit 1 is never chosen
(it would be a bug: an uncaught exception).
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_STOPPED = 3
EXIT_SOME_FAILED = 4


class UsageError(Exception):
    """Bad input or configuration: printed as one clear line, exit code 2."""


def rows_exit(*, stopped: bool, succeeded: int, failed: int) -> int:
    """The code for rows that were run: stopped early or nothing but failures 3, some failures 4, else 0."""
    if stopped or (failed and not succeeded):
        return EXIT_STOPPED
    return EXIT_SOME_FAILED if failed else EXIT_OK
