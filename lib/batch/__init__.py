"""Batch mode: a run through OpenAI's Batch API at half the price.

`files` renders JSONL chunks and reads result lines, `journal` records every step before the next,
`job` is the BatchJob that uploads, creates, polls and merges. Its public names are re-exported here.
"""

from lib.batch.job import (
    META_CHUNK,
    BatchJob,
    BatchSavings,
    BatchSettings,
    ChunkProgress,
    continue_batch,
    is_batch_run,
    resume,
    start,
)

__all__ = [
    "META_CHUNK",
    "BatchJob",
    "BatchSavings",
    "BatchSettings",
    "ChunkProgress",
    "continue_batch",
    "is_batch_run",
    "resume",
    "start",
]
