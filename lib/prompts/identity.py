"""Which prompt a run used: its library name and version, whether it was edited since, and a short hash.

The hash covers everything that shapes the requests and how answers are judged (system, examples,
template, outputs, schema, model settings, field cap, packing, optional fields, checks, name), not the
description, tags or version number: two prompts with one hash send the same requests.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace

from lib.prompts.templates import PromptSpec

HASH_CHARS = 8


def prompt_hash(spec: PromptSpec) -> str:
    """A short hex digest of the prompt's canonical file text (the same in every process)."""
    from lib.prompts.library import dump_spec  # library imports templates; keep this module light

    canonical = dump_spec(replace(spec, description="", tags=(), version=1))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:HASH_CHARS]


def identity(spec: PromptSpec, saved: PromptSpec | None) -> dict:
    """What a run records about its prompt; `saved` is the library version it was opened from (None: a
    blank or command-line prompt, which counts as edited)."""
    digest = prompt_hash(spec)
    return {
        "prompt_name": spec.name,
        "prompt_version": spec.version,
        "prompt_edited": saved is None or prompt_hash(saved) != digest,
        "prompt_hash": digest,
    }


def opened_from(library, source: str | None, version: int) -> PromptSpec | None:
    """The saved prompt a draft was opened from (`source` = its library name, "" or None for a blank
    prompt), at the version it was opened at; None when there is none any more (then it counts as edited)."""
    from lib.prompts.library import PromptLibraryError

    if not source:
        return None
    try:
        return library.load_version(source, version)
    except PromptLibraryError:
        return None


def draft_identity(draft, saved: PromptSpec | None, mapping: Mapping[str, str] | None = None) -> dict:
    """What a run records of a draft (lib.prompts.draft.Draft): identity() against the saved version it
    was opened from, and the workspace's column mapping; {} for no draft or one that is not a prompt yet."""
    if draft is None:
        return {}
    try:
        spec = draft.spec()
    except ValueError:
        return {}
    found = identity(spec, saved)
    if mapping:
        found["prompt_mapping"] = dict(mapping)
    return found
