"""The one progress display of the command line: run, fetch and compare draw through it.

A command turns its job's snapshot into a `Frame` (`run_frame`, `fetch_frame`) and hands it to `Progress`,
which draws one line on stderr: redrawn in place on a terminal, a line every few seconds otherwise (a log
file stays short), nothing with --quiet. Stdout is left alone: its last line stays the one JSON object.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

BAR_WIDTH = 28
LINE_WIDTH = 110


@dataclass(frozen=True)
class Frame:
    """What one progress line shows: rows done of total, failures, cost, rate, ETA, notes and the status."""

    done: int
    total: int
    failed: int
    status: str
    rate: float = 0.0
    unit: str = "rows/s"
    cost: str | None = None  # "$0.0123", or why there is none; None: the job costs nothing
    eta_s: float | None = None
    notes: tuple[str, ...] = ()  # after the ETA: where batches are, why nothing moves...
    label: str = ""  # before the bar: which variant or attempt this is

    @property
    def progress(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0

    def line(self) -> str:
        filled = int(BAR_WIDTH * self.progress)
        parts = [
            *([self.label] if self.label else []),
            f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}]",
            f"{self.done:,}/{self.total:,} rows ({self.failed:,} failed)",
            *([self.cost] if self.cost else []),
            f"{self.rate:.1f} {self.unit}",
        ]
        if self.eta_s:
            parts.append(f"ETA {duration(self.eta_s)}")
        return " ".join(parts) + "".join(f" · {n}" for n in self.notes) + f" [{self.status}]"


def duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def money(snap) -> str:
    return f"${snap.cost_usd:.4f}" if snap.cost_known else "cost unknown (unpriced model)"


def run_frame(snap, label: str = "") -> Frame:
    """A live or batch run's snapshot (lib.engine.job.Snapshot) as a frame."""
    from lib.views.run_status import stall_text

    notes = []
    if snap.status == "running" and snap.message:  # batch mode: where the batches are at OpenAI
        notes.append(snap.message)
    stall = stall_text(snap)
    if stall:
        notes.append(stall)
    return Frame(
        done=snap.done,
        total=snap.total,
        failed=snap.failed,
        status=snap.status,
        rate=snap.rows_per_s,
        cost=money(snap),
        eta_s=snap.eta_s,
        notes=tuple(notes),
        label=label,
    )


def fetch_frame(snap) -> Frame:
    """A website reading's snapshot (lib.web.job.WebSnapshot) as a frame."""
    return Frame(
        done=snap.done,
        total=snap.total,
        failed=snap.failed,
        status=snap.status,
        rate=snap.sites_per_s,
        unit="sites/s",
        eta_s=snap.eta_s,
        notes=(f"{snap.cache_hits:,} sites from the store",),
    )


class Progress:
    """Draws frames on stderr: in place on a terminal twice a second, else a line every 5 s; final lines always."""

    def __init__(self, quiet: bool, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._last = 0.0

    def draw(self, frame: Frame, final: bool = False) -> None:
        now = time.monotonic()
        if self.quiet or (not final and now - self._last < (0.5 if self.tty else 5.0)):
            return
        self._last = now
        line = frame.line()
        if self.tty:
            self.stream.write("\r" + line.ljust(LINE_WIDTH) + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def follow(self, job, frame_of: Callable[[Any], Frame] = run_frame) -> None:
        """Draw `job` until it stops, its last frame included: the wait loop every command shares."""
        while not job.wait(timeout=0.25):
            self.draw(frame_of(job.snapshot()))
        self.draw(frame_of(job.snapshot()), final=True)
