"""Ctrl-C and SIGTERM for commands that run jobs: stop sending, let the answers in flight be recorded (they
are billed anyway), write the output, exit 3. A second Ctrl-C quits at once.

One handler for the whole command, whichever job is going: the run, its --retry-failed phase, each
--regenerate attempt, a fetch. A stop asked between two jobs stops the next one as soon as it is watched.
"""

from __future__ import annotations

import signal
import sys


class Interrupted(Exception):
    """A second Ctrl-C: quit now, without waiting for answers in flight or writing the output."""


class Interrupts:
    def __init__(self) -> None:
        self.stopped = False
        self._job = None

    def install(self) -> Interrupts:
        signal.signal(signal.SIGINT, self._handle)
        signal.signal(signal.SIGTERM, self._handle)
        return self

    def watch(self, job):
        """Make `job` the one a Ctrl-C stops (stopped at once if one came already); returns it."""
        self._job = job
        if self.stopped:
            _stop(job)
        return job

    def _handle(self, signum, frame) -> None:
        if self.stopped:
            raise Interrupted
        self.stopped = True
        if self._job is not None:
            _stop(self._job)
        else:
            print("\nStopping...", file=sys.stderr)


def _stop(job) -> None:
    if job.kind == "batch":
        # The batches go on at OpenAI and are paid for anyway: stop watching, do not cancel them.
        print(
            "\nStopping: the batches go on at OpenAI; run the same command again to collect them.",
            file=sys.stderr,
        )
        job.pause(
            "Stopped watching: the batches go on at OpenAI. Run the same command again to collect them."
        )
        return
    print("\nStopping: waiting for requests in flight (Ctrl-C again to quit now)...", file=sys.stderr)
    job.cancel()
