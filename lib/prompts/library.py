"""The prompt library: one human-readable YAML file per prompt in prompts/, written atomically.

A file holds, in this order: name, description, version, model, reasoning_effort, temperature, max_tokens, field_cap,
rows_per_request (optional: several rows per request, lib.prompts.packing),
output_columns (plain prompts) or json_schema (structured ones), system, examples (a list of
{user, assistant}), template, optional_fields (placeholders a file may lack: sent empty), web research
(tools: [web_search], max_tool_calls, search_context_size, user_location: lib.prompts.research),
one_answer_per (the placeholder that keys one answer per company), checks, tags.
Multi-line text is written as `|` block scalars so a diff shows the real change. Saving never overwrites another prompt silently: `save_new` refuses an existing name
and `save_version` refuses when the file changed since it was opened (optimistic concurrency).

Versions are never lost: saving version N+1 first keeps version N's exact file text as
versions/<stem>/v<N>.yaml (with the file's mode); `versions`, `load_version`, `diff` and `restore` read
them, and restoring saves the old text as the next version. Deleting a prompt keeps its current file
with its versions and sets that folder aside as versions/<stem>.deleted-<time>. Every save refuses
what loading would refuse (an empty template, a field out of range), before anything is written.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from lib.models import effort_ladder
from lib.prompts import checks as quality
from lib.prompts import research, templates
from lib.prompts.templates import FIELD_CAP, Example, PromptSpec, parse_output

try:
    import fcntl
except ImportError:  # Windows: the in-process lock still serialises one server's saves
    fcntl = None  # type: ignore[assignment]

DEFAULT_DIRECTORY = Path(__file__).resolve().parents[2] / "prompts"
SUFFIX = ".yaml"
VERSIONS = "versions"  # prompts/versions/<stem>/v<N>.yaml: every earlier version, byte for byte
_FIELDS = (
    "name",
    "description",
    "version",
    "model",
    "reasoning_effort",
    "temperature",
    "max_tokens",
    "field_cap",
    "rows_per_request",
    "output_columns",
    "json_schema",
    "system",
    "examples",
    "template",
    "optional_fields",
    "tools",
    "max_tool_calls",
    "search_context_size",
    "user_location",
    "one_answer_per",
    "checks",
    "tags",
)
MAX_ROWS_PER_REQUEST = 50  # packing more rows than this makes one lost answer costly and outputs long
_thread_lock = threading.Lock()


class PromptLibraryError(Exception):
    """A prompt file cannot be read or written; the message names the file and field."""


def slug(name: str) -> str:
    """The file stem for a prompt name: "Company name normalisation" -> "company-name-normalisation"."""
    text = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    if not text:
        raise PromptLibraryError(f"A prompt name needs at least one letter or digit: {name!r}")
    return text[:80]


# ------------------------------------------------------------------------------------------------- YAML text


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line text, block-style lists and mappings."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_spec(spec: PromptSpec) -> str:
    """The YAML text of a prompt file."""
    data: dict[str, Any] = {"name": spec.name, "description": spec.description, "version": spec.version}
    for key in ("model", "reasoning_effort", "temperature", "max_tokens"):
        if getattr(spec, key) is not None:
            data[key] = getattr(spec, key)
    data["field_cap"] = spec.field_cap
    if spec.rows_per_request is not None:
        data["rows_per_request"] = spec.rows_per_request
    if spec.json_schema is not None:
        data["json_schema"] = spec.json_schema
    else:
        data["output_columns"] = list(spec.output_columns)
    data["system"] = spec.system
    if spec.examples:
        data["examples"] = [{"user": e.user, "assistant": e.assistant} for e in spec.examples]
    data["template"] = spec.template
    if spec.optional_fields:
        data["optional_fields"] = list(spec.optional_fields)
    if spec.tools:
        data["tools"] = list(spec.tools)
    for key in ("max_tool_calls", "search_context_size", "one_answer_per"):
        if getattr(spec, key) is not None:
            data[key] = getattr(spec, key)
    if spec.user_location:
        data["user_location"] = dict(spec.user_location)
    if quality.to_mapping(spec.checks):
        data["checks"] = quality.to_mapping(spec.checks)
    if spec.tags:
        data["tags"] = list(spec.tags)
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000)


def _fail(source: str, key: str, message: str) -> PromptLibraryError:
    return PromptLibraryError(f"{source or 'prompt'}: field '{key}' {message}")


def _text(data: dict, key: str, source: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(source, key, "is missing")
        return ""
    if not isinstance(value, str):
        raise _fail(source, key, f"must be text, not {type(value).__name__} ({value!r})")
    if required and not value.strip():
        raise _fail(source, key, "is empty")
    return value


def _number(data: dict, key: str, source: str, *, whole: bool, low: float, high: float) -> Any:
    value = data.get(key)
    if value is None:
        return None
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise _fail(source, key, f"must be {kind} from {low:g} to {high:g}, not {value!r}")
    return value


def _text_list(data: dict, key: str, source: str) -> tuple[str, ...]:
    value = data.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(source, key, "must be a list of non-empty texts")
    if len(set(value)) != len(value):
        raise _fail(source, key, "lists a name twice")
    return tuple(value)


def _schema(data: dict, source: str) -> dict | None:
    schema = data.get("json_schema")
    if schema is None:
        return None
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise _fail(source, "json_schema", "must be a JSON schema with type: object")
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise _fail(source, "json_schema", "needs properties: one per output column")
    for name, sub in properties.items():
        if not isinstance(sub, dict):
            raise _fail(source, "json_schema", f"property '{name}' must be a schema mapping")
        if "enum" in sub and not (isinstance(sub["enum"], list) and sub["enum"]):
            raise _fail(source, "json_schema", f"property '{name}' has an empty or malformed enum")
    return schema


def _examples(data: dict, source: str) -> tuple[Example, ...]:
    value = data.get("examples") or []
    if not isinstance(value, list):
        raise _fail(source, "examples", "must be a list of {user, assistant} pairs")
    examples = []
    for number, item in enumerate(value, start=1):
        if not isinstance(item, dict) or set(item) != {"user", "assistant"}:
            raise _fail(source, "examples", f"item {number} must have exactly 'user' and 'assistant'")
        examples.append(
            Example(
                _text(item, "user", f"{source} example {number}", required=True),
                _text(item, "assistant", f"{source} example {number}", required=True),
            )
        )
    return tuple(examples)


def parse_spec(text: str, *, source: str = "") -> PromptSpec:
    """A PromptSpec from YAML text; errors name the file (`source`) and the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PromptLibraryError(f"{source or 'prompt'}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise PromptLibraryError(f"{source or 'prompt'}: expected a mapping of fields like 'name: ...'")
    unknown = [k for k in data if k not in _FIELDS]
    if unknown:
        raise _fail(source, str(unknown[0]), f"is not a prompt field (known: {', '.join(_FIELDS)})")
    schema = _schema(data, source)
    columns = _text_list(data, "output_columns", source) or ("output",)
    if schema is not None and "output_columns" in data and columns != tuple(schema["properties"]):
        raise _fail(source, "output_columns", "must match json_schema's properties (or be left out)")
    try:
        spec = PromptSpec(
            name=_text(data, "name", source, required=True).strip(),
            description=_text(data, "description", source),
            version=_number(data, "version", source, whole=True, low=1, high=1e9) or 1,
            system=_text(data, "system", source),
            examples=_examples(data, source),
            template=_text(data, "template", source, required=True),
            output_columns=columns,
            json_schema=schema,
            model=_text(data, "model", source) or None,
            reasoning_effort=_effort(data, source),
            temperature=_number(data, "temperature", source, whole=False, low=0, high=2),
            max_tokens=_number(data, "max_tokens", source, whole=True, low=1, high=1_000_000),
            tags=_text_list(data, "tags", source),
            field_cap=_number(data, "field_cap", source, whole=True, low=1, high=10_000_000) or FIELD_CAP,
            rows_per_request=_number(
                data, "rows_per_request", source, whole=True, low=1, high=MAX_ROWS_PER_REQUEST
            ),
            checks=quality.from_mapping(data.get("checks"), source or "prompt"),
            optional_fields=_text_list(data, "optional_fields", source),
            **research.prompt_fields(data),
        )
    except quality.ChecksError as exc:
        raise PromptLibraryError(str(exc)) from None
    except ValueError as exc:
        raise PromptLibraryError(f"{source or 'prompt'}: {exc}") from None
    _check_example_answers(spec, source)
    _check_optional_fields(spec, source)
    _check_one_answer_per(spec, source)
    return spec


def _check_one_answer_per(spec: PromptSpec, source: str) -> None:
    """one_answer_per names a placeholder of the prompt: the answer is keyed by that field's value."""
    used = templates.placeholders(spec.system) + templates.placeholders(spec.template)
    if spec.one_answer_per is not None and spec.one_answer_per not in used:
        have = ", ".join(dict.fromkeys(used)) or "none"
        raise _fail(
            source, "one_answer_per", f"names '{spec.one_answer_per}', not a placeholder (have: {have})"
        )


def _effort(data: dict, source: str) -> str | None:
    """reasoning_effort: one of the words OpenAI uses (lib.models.effort_ladder), or absent."""
    value = data.get("reasoning_effort")
    if value is None or value == "auto":
        return None
    ladder = effort_ladder()
    if str(value) not in ladder:
        raise _fail(source, "reasoning_effort", f"must be one of {', '.join(ladder)} (got {value!r})")
    return str(value)


def _check_optional_fields(spec: PromptSpec, source: str) -> None:
    """Each optional field must be a placeholder of the prompt: a typo would make nothing optional."""
    used = templates.placeholders(spec.system) + templates.placeholders(spec.template)
    for name in spec.optional_fields:
        if name not in used:
            have = ", ".join(dict.fromkeys(used)) or "none"
            raise _fail(
                source,
                "optional_fields",
                f"names '{name}', which is not a placeholder of the prompt (have: {have})",
            )


def _check_example_answers(spec: PromptSpec, source: str) -> None:
    """A structured prompt's example answers must themselves be valid answers: the model copies them."""
    for number, example in enumerate(spec.examples, start=1):
        error = parse_output(spec, example.assistant).error  # plain prompts never fail to parse
        if error:
            raise _fail(source, "examples", f"item {number}'s answer does not fit the schema: {error}")


# ----------------------------------------------------------------------------------------------- the library


def _default_mode() -> int:
    """The mode a new file gets in this process (0o666 less the umask), without changing the umask."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: read it by setting it (saves hold the library lock meanwhile)
    os.umask(mask)
    return 0o666 & ~mask


def _write_atomically(path: Path, text: str, *, overwrite: bool, mode: int | None = None) -> None:
    """Write via a temp file in the same directory; without `overwrite`, fail if `path` exists.

    The file gets `mode`, else the mode an ordinary new file gets here (mkstemp's own 0600 would hide a
    shared library's prompts from the rest of the team).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), _default_mode() if mode is None else mode)
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic create-if-absent: raises FileExistsError instead of clobbering
    finally:
        tmp.unlink(missing_ok=True)


def _mode_of(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


EMPTY_TEMPLATE = "The user message template is empty: write what the model should be asked for each row."


def _checked_text(spec: PromptSpec, source: str) -> str:
    """The file text of `spec`, refused (PromptLibraryError) when loading it back would fail."""
    if not spec.template.strip():
        raise PromptLibraryError(EMPTY_TEMPLATE)
    if not spec.name.strip():
        raise PromptLibraryError("The prompt needs a name.")
    text = dump_spec(spec)
    parse_spec(text, source=source)  # what load would refuse is refused now, before anything is written
    return text


@dataclass(frozen=True)
class PromptVersion:
    version: int
    path: Path
    saved_at: float  # the file's modification time (seconds since the epoch)
    is_current: bool


_VERSION_FILE = re.compile(r"v(\d+)\.yaml")


class PromptLibrary:
    def __init__(self, directory: Path | str = DEFAULT_DIRECTORY) -> None:
        self.directory = Path(directory)

    slug = staticmethod(slug)

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())

    def _read(self, path: Path) -> PromptSpec:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise PromptLibraryError(f"{path.name}: cannot be read: {exc.strerror or exc}") from None
        return parse_spec(text, source=path.name)

    def _entries(self) -> Iterator[tuple[Path, PromptSpec | PromptLibraryError]]:
        for path in self._files():
            try:
                yield path, self._read(path)
            except PromptLibraryError as exc:
                yield path, exc

    def list(self) -> list[PromptSpec]:
        """Every readable prompt, by name; see `errors()` for files that could not be read."""
        specs = [s for _, s in self._entries() if isinstance(s, PromptSpec)]
        return sorted(specs, key=lambda s: s.name.casefold())

    def errors(self) -> list[str]:
        """One message per prompt file that does not load."""
        return [str(s) for _, s in self._entries() if isinstance(s, PromptLibraryError)]

    def names(self) -> list[str]:
        return [spec.name for spec in self.list()]

    def _find(self, name: str) -> tuple[Path, PromptSpec] | None:
        """The file holding the prompt called `name` (or with that file stem), case-insensitively."""
        wanted = name.strip().casefold()
        for path, spec in self._entries():
            if isinstance(spec, PromptSpec) and wanted in (spec.name.casefold(), path.stem.casefold()):
                return path, spec
        return None

    def path_of(self, name: str) -> Path:
        return self._found(name)[0]

    def _have(self) -> str:
        return ", ".join(self.names()) or "none"

    def load(self, name_or_path: str | Path) -> PromptSpec:
        """A prompt by its name in the library, or from a path to a .yaml file."""
        path = Path(name_or_path)
        if path.suffix in (".yaml", ".yml") and (path.exists() or len(path.parts) > 1):
            return self._read(path)
        found = self._find(str(name_or_path))
        if found is None:
            raise PromptLibraryError(
                f"No prompt named '{name_or_path}' in {self.directory} (have: {self._have()})"
            )
        return found[1]

    # --- versions --------------------------------------------------------------------------------

    def versions_dir(self, stem: str) -> Path:
        """Where the earlier versions of the prompt in `<stem>.yaml` are kept: versions/<stem>/v<N>.yaml."""
        return self.directory / VERSIONS / stem

    def _keep(self, path: Path, version: int) -> None:
        """Keep the file's exact text as versions/<stem>/v<version>.yaml, with the file's mode.

        An archive of that number that says something else (the file was edited by hand without a new
        version number) is kept too: the current text then goes beside it as v<N>-<hash>.yaml.
        """
        text = path.read_bytes().decode("utf-8")  # not read_text: "\r\n" line ends are kept as they are
        folder = self.versions_dir(path.stem)
        target = folder / f"v{version}{SUFFIX}"
        if target.exists():
            if target.read_bytes().decode("utf-8") == text:
                return
            target = folder / f"v{version}-{hashlib.sha1(text.encode()).hexdigest()[:8]}{SUFFIX}"
            if target.exists():
                return
        _write_atomically(target, text, overwrite=False, mode=_mode_of(path))

    def versions(self, name: str) -> list[PromptVersion]:
        """Every version of a prompt kept in the library, newest first; the current file is one of them."""
        path, current = self._found(name)
        out = {current.version: PromptVersion(current.version, path, path.stat().st_mtime, True)}
        folder = self.versions_dir(path.stem)
        if folder.is_dir():
            for file in folder.iterdir():
                match = _VERSION_FILE.fullmatch(file.name)
                if match and int(match.group(1)) not in out:
                    number = int(match.group(1))
                    out[number] = PromptVersion(number, file, file.stat().st_mtime, False)
        return [out[n] for n in sorted(out, reverse=True)]

    def _version_text(self, name: str, version: int) -> tuple[Path, str]:
        for kept in self.versions(name):
            if kept.version == version:
                return kept.path, kept.path.read_text(encoding="utf-8")
        have = ", ".join(f"v{v.version}" for v in self.versions(name))
        raise PromptLibraryError(f"'{name}' has no version {version} (have: {have})")

    def load_version(self, name: str, version: int) -> PromptSpec:
        """One version of a prompt, the current one or a kept one."""
        path, text = self._version_text(name, version)
        return parse_spec(
            text, source=f"{path.parent.name}/{path.name}" if path.parent != self.directory else path.name
        )

    def diff(self, name: str, old: int, new: int) -> str:
        """A unified diff of two versions' file texts, headed "v<old>" and "v<new>" ("" when equal)."""
        _, before = self._version_text(name, old)
        _, after = self._version_text(name, new)
        lines = difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), f"v{old}", f"v{new}"
        )
        return "".join(lines)

    def restore(self, name: str, version: int, expected_version: int) -> PromptSpec:
        """Make an earlier version current again, saved as the next version (nothing is lost)."""
        old = self.load_version(name, version)
        current = self.load(name)
        return self.save_version(replace(old, name=current.name), expected_version)

    # --- saving --------------------------------------------------------------------------------------

    def _found(self, name: str) -> tuple[Path, PromptSpec]:
        found = self._find(name)
        if found is None:
            raise PromptLibraryError(f"No prompt named '{name}' in {self.directory} (have: {self._have()})")
        return found

    def save_new(self, spec: PromptSpec) -> Path:
        """Write a new prompt file; refuses a name (or file) that already exists, and what load would refuse."""
        path = self.directory / (slug(spec.name) + SUFFIX)
        with self._locked():
            if self._find(spec.name) is not None or path.exists():
                raise PromptLibraryError(
                    f"A prompt named '{spec.name}' already exists ({path.name}): choose another name, "
                    "or save a new version of it"
                )
            text = _checked_text(spec, path.name)
            self._set_aside(path.stem)  # versions of a prompt deleted by hand are not this one's
            try:
                _write_atomically(path, text, overwrite=False)
            except FileExistsError:
                raise PromptLibraryError(f"{path.name} was created meanwhile: choose another name") from None
        return path

    def save_version(self, spec: PromptSpec, expected_version: int) -> PromptSpec:
        """Save `spec` as the next version of its prompt, unless the file changed since version `expected_version`.

        The version it replaces is kept first, byte for byte, under versions/<stem>/v<N>.yaml; the new
        file keeps the old file's mode.
        """
        with self._locked():
            found = self._find(spec.name)
            if found is None:
                raise PromptLibraryError(f"No prompt named '{spec.name}' to update: save it as new instead")
            path, current = found
            if current.version != expected_version:
                raise PromptLibraryError(
                    f"'{spec.name}' was changed by someone else since you opened it (version "
                    f"{expected_version}, now {current.version}): reload it, or save yours under a new name"
                )
            saved = replace(spec, version=current.version + 1)
            text = _checked_text(saved, path.name)
            self._keep(path, current.version)
            _write_atomically(path, text, overwrite=True, mode=_mode_of(path))
        return saved

    def duplicate(self, name: str, new_name: str) -> PromptSpec:
        """A copy of a prompt under a new name, starting again at version 1."""
        copy = replace(self.load(name), name=new_name.strip(), version=1)
        self.save_new(copy)
        return copy

    def delete(self, name: str) -> None:
        """Take a prompt out of the library without losing it: its current file joins its kept versions,
        and the folder is set aside as versions/<stem>.deleted-<UTC time> (the name is free again)."""
        with self._locked():
            path, current = self._found(name)
            self._keep(path, current.version)
            path.unlink()
            self._set_aside(path.stem)

    def _set_aside(self, stem: str) -> None:
        folder = self.versions_dir(stem)
        if folder.is_dir():
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            target = folder.with_name(f"{stem}.deleted-{stamp}")
            n = 2
            while target.exists():
                target, n = folder.with_name(f"{stem}.deleted-{stamp}-{n}"), n + 1
            folder.rename(target)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise writers to this directory across threads and processes (read-check-write)."""
        key = hashlib.sha1(str(self.directory.resolve()).encode()).hexdigest()[:16]
        lock_path = Path(tempfile.gettempdir()) / f"lead-studio-prompts-{key}.lock"
        with _thread_lock, open(lock_path, "a") as handle:
            if fcntl is not None:
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(handle, fcntl.LOCK_UN)
