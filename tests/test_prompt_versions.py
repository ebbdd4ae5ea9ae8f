"""Prompt versions are never lost: kept byte for byte with their mode, listed, diffed, restored; refused
saves write nothing; concurrent saves are still refused."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from lib.prompts.library import EMPTY_TEMPLATE, PromptLibrary, PromptLibraryError, parse_spec
from lib.prompts.templates import PromptSpec
from tests.prompt_helpers import fresh_library

SHIPPED = Path(__file__).resolve().parent.parent / "prompts"
STEMS = sorted(p.stem for p in SHIPPED.glob("*.yaml"))


@pytest.fixture
def lib(tmp_path: Path) -> PromptLibrary:
    """The shipped prompts as a fresh library: each at version 1, no versions kept yet."""
    return PromptLibrary(fresh_library(tmp_path / "prompts"))


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("stem", STEMS)
def test_saving_a_version_keeps_the_last_one_with_every_field(lib, stem):
    path = lib.directory / f"{stem}.yaml"
    before = path.read_text(encoding="utf-8")
    spec = lib.load(stem)
    saved = lib.save_version(replace(spec, temperature=0.5), expected_version=spec.version)
    kept = lib.directory / "versions" / stem / f"v{spec.version}.yaml"
    assert kept.read_text(encoding="utf-8") == before  # byte for byte
    assert lib.load_version(stem, spec.version) == spec
    reloaded = lib.load(stem)
    assert reloaded == saved and reloaded.version == spec.version + 1
    # every field survives the save: tags, checks, optional fields, packing, examples, schema
    assert replace(reloaded, version=spec.version, temperature=spec.temperature) == spec
    assert reloaded.tags == spec.tags and reloaded.checks == spec.checks
    assert reloaded.optional_fields == spec.optional_fields and reloaded.examples == spec.examples
    # the library's listing shows prompts, not their kept versions
    assert sorted(lib.names()) == sorted(PromptLibrary(SHIPPED).names())


def test_a_file_with_windows_line_ends_is_kept_byte_for_byte(lib):
    path = lib.directory / "summary.yaml"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    before = path.read_bytes()
    spec = lib.load("summary")
    lib.save_version(replace(spec, temperature=0.0), expected_version=1)
    assert (lib.directory / "versions" / "summary" / "v1.yaml").read_bytes() == before


def test_rows_per_request_and_optional_fields_survive(lib):
    spec = PromptSpec(
        name="Packed",
        template="{{ Company }} {{ City }}",
        rows_per_request=10,
        optional_fields=("City",),
        tags=("a", "b"),
    )
    lib.save_new(spec)
    saved = lib.save_version(replace(spec, template="{{ Company }}, {{ City }}"), expected_version=1)
    assert lib.load("Packed") == saved
    assert lib.load_version("Packed", 1) == spec
    assert saved.rows_per_request == 10 and saved.optional_fields == ("City",) and saved.tags == ("a", "b")


@pytest.mark.parametrize("mode", [0o644, 0o664, 0o600])
def test_file_modes_are_kept(lib, mode):
    path = lib.directory / "icebreaker.yaml"
    os.chmod(path, mode)
    spec = lib.load("icebreaker")
    lib.save_version(replace(spec, temperature=0.1), expected_version=1)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE((lib.directory / "versions" / "icebreaker" / "v1.yaml").stat().st_mode) == mode


def test_a_new_prompt_gets_the_umask_default_not_0600(lib):
    old = os.umask(0o022)
    try:
        path = lib.save_new(PromptSpec(name="Fresh", template="{{ X }}"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_versions_diff_and_restore(lib):
    spec = lib.load("icebreaker")
    v2 = lib.save_version(replace(spec, temperature=0.2), expected_version=1)
    v3 = lib.save_version(replace(v2, max_tokens=60), expected_version=2)
    listed = lib.versions("Icebreaker")
    assert [(v.version, v.is_current) for v in listed] == [(3, True), (2, False), (1, False)]
    assert listed[0].path == lib.directory / "icebreaker.yaml"
    assert all(v.saved_at > 0 for v in listed)
    assert [lib.load_version("icebreaker", n) for n in (1, 2, 3)] == [spec, v2, v3]
    diff = lib.diff("icebreaker", 1, 2)
    assert diff.startswith("--- v1\n+++ v2\n")
    assert "-version: 1\n" in diff and "+version: 2\n" in diff
    assert (
        "+temperature: 0.2\n" in diff and "-temperature" not in diff
    )  # v1 sends none (its model refuses one)
    assert lib.diff("icebreaker", 2, 2) == ""
    restored = lib.restore("icebreaker", 1, expected_version=3)
    assert restored.version == 4 and replace(restored, version=1) == spec
    assert lib.load("icebreaker") == restored
    assert [v.version for v in lib.versions("icebreaker")] == [4, 3, 2, 1]  # nothing lost by restoring
    assert lib.load_version("icebreaker", 3) == v3
    with pytest.raises(PromptLibraryError, match=r"'icebreaker' has no version 9 \(have: v4, v3, v2, v1\)"):
        lib.load_version("icebreaker", 9)


def test_restore_refuses_a_stale_version(lib):
    spec = lib.load("icebreaker")
    lib.save_version(replace(spec, temperature=0.2), expected_version=1)
    before = _tree(lib.directory)
    with pytest.raises(PromptLibraryError, match="changed by someone else"):
        lib.restore("icebreaker", 1, expected_version=1)
    assert _tree(lib.directory) == before


def test_concurrent_save_is_still_refused(lib):
    mine, theirs = lib.load("summary"), lib.load("summary")
    lib.save_version(replace(theirs, temperature=0.9), expected_version=1)
    before = _tree(lib.directory)
    with pytest.raises(PromptLibraryError, match="changed by someone else since you opened it"):
        lib.save_version(replace(mine, temperature=0.1), expected_version=1)
    assert _tree(lib.directory) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"template": ""}, EMPTY_TEMPLATE),
        ({"template": "  \n\t "}, EMPTY_TEMPLATE),
        ({"temperature": 5.0}, "icebreaker.yaml: field 'temperature' must be a number from 0 to 2"),
        ({"optional_fields": ("Nope",)}, "icebreaker.yaml: field 'optional_fields' names 'Nope'"),
        ({"max_tokens": 0}, "icebreaker.yaml: field 'max_tokens' must be a whole number"),
    ],
)
def test_what_load_would_refuse_is_never_written(lib, change, message):
    spec = lib.load("icebreaker")
    before = _tree(lib.directory)
    with pytest.raises(PromptLibraryError) as info:
        lib.save_version(replace(spec, **change), expected_version=1)
    assert str(info.value).startswith(message)
    with pytest.raises(PromptLibraryError) as info:
        lib.save_new(replace(spec, name="Another", **change))
    assert str(info.value).startswith(message.replace("icebreaker.yaml", "another.yaml"))
    assert _tree(lib.directory) == before  # nothing written, no version kept, no temp file


def test_delete_keeps_everything_and_frees_the_name(lib):
    spec = lib.load("summary")
    lib.save_version(replace(spec, temperature=0.0), expected_version=1)
    current = (lib.directory / "summary.yaml").read_text(encoding="utf-8")
    lib.delete("Summary")
    assert "Summary" not in lib.names() and not (lib.directory / "summary.yaml").exists()
    (aside,) = [p for p in (lib.directory / "versions").iterdir() if p.name.startswith("summary.deleted-")]
    assert sorted(p.name for p in aside.iterdir()) == ["v1.yaml", "v2.yaml"]
    assert (aside / "v2.yaml").read_text(encoding="utf-8") == current
    assert parse_spec((aside / "v1.yaml").read_text(encoding="utf-8")) == spec
    # a new prompt of that name starts afresh: the deleted one's versions are not its own
    lib.save_new(replace(spec, template="{{ Notes }}", version=1))
    assert [v.version for v in lib.versions("Summary")] == [1]


def test_an_archive_that_differs_is_never_overwritten(lib):
    spec = lib.load("summary")
    lib.save_version(replace(spec, temperature=0.0), expected_version=1)
    v2_text = (lib.directory / "summary.yaml").read_text(encoding="utf-8")
    folder = lib.directory / "versions" / "summary"
    other = "name: Summary\ntemplate: '{{ X }}'\nversion: 2\n"
    (folder / "v2.yaml").write_text(other, encoding="utf-8")  # someone wrote a v2 there by hand
    lib.save_version(replace(spec, temperature=0.3), expected_version=2)
    files = {p.name: p.read_text(encoding="utf-8") for p in folder.iterdir()}
    assert files.pop("v2.yaml") == other and files.pop("v1.yaml")
    ((beside, text),) = files.items()
    assert re.fullmatch(r"v2-[0-9a-f]{8}\.yaml", beside) and text == v2_text
