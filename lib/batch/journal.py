"""The batch journal: one row per chunk of a run sent through the Batch API, kept by the run's store.

Each step is committed before the next one starts, so a crash at any point leaves a record of what may
have happened at OpenAI:

    prepared (row ids, content sha256, size, file name)  ->  uploading  ->  uploaded (file id)
      ->  creating  ->  submitted (batch id)  ->  batch statuses as polled  ->  merged

"uploading" and "creating" mean "the call may have gone through": a restart then looks the file up by
name (and size) or the batch up by its metadata before uploading or creating again, so a chunk is never
uploaded or batched twice. The table (`batch_chunks`) is one of the store's, on its connection and under
its migrations (lib/store/batch.py); this is the batch job's view of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from lib.store import Chunk, Store
from lib.store.batch import STEPS

__all__ = ["STEPS", "BatchJournal", "Chunk"]


class BatchJournal:
    """One run store's batch_chunks, as the batch job reads and writes them."""

    def __init__(self, store: Store):
        self.store = store

    def chunks(self, run_id: str) -> list[Chunk]:
        return self.store.batch_chunks(run_id)

    def has_batches(self, run_id: str) -> bool:
        return self.store.has_batches(run_id)

    def add(self, chunks: Sequence[Chunk]) -> None:
        """Journal freshly prepared chunks, all or none."""
        self.store.add_batch_chunks(chunks)

    def update(self, run_id: str, index: int, **fields: object) -> None:
        """Set some columns of one chunk (step, file_id, batch_id, batch_status, counts, result files)."""
        self.store.update_batch_chunk(run_id, index, **fields)
