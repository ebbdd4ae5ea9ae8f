"""The journal: every row's outcome is committed to the store before the run counts it.

When the disk fails (full, read-only), the answer is not thrown away: it is held here, in memory, the
run pauses with the store's words, and the answers held are written first when the run goes on (whatever
it goes on through: a resume, a fixed key or endpoint). They were paid for: they must never be bought again.
"""

from __future__ import annotations

import threading

from lib.store import CachedResponse, RowRecord, Store, StoreError


class Journal:
    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self._held: list[tuple[RowRecord, CachedResponse | None]] = []
        self._lock = threading.Lock()

    @property
    def holding(self) -> int:
        """Answers held in memory because the disk refused them."""
        return len(self._held)

    def record(self, row: RowRecord, cache: CachedResponse | None = None) -> str | None:
        """Write the row (and the paid answer behind it); None when written, else why not (the row is held)."""
        try:
            self.store.record(self.run_id, row, cache=cache)
        except StoreError as exc:
            with self._lock:
                self._held.append((row, cache))
            return str(exc)
        return None

    def flush(self) -> tuple[list[RowRecord], str | None]:
        """Write the held answers, oldest first: (the rows written, why the rest could not be, or None)."""
        written: list[RowRecord] = []
        with self._lock:
            while self._held:
                row, cache = self._held[0]
                try:
                    self.store.record(self.run_id, row, cache=cache)
                except StoreError as exc:
                    return written, str(exc)
                self._held.pop(0)
                written.append(row)
        return written, None
