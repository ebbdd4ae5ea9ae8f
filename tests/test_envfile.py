"""Where the key comes from: the project's `.env` (next to app.py) first, then the current folder's, never
replacing the environment (README: "Your OpenAI key"). The command line run from another folder found no
key because only the current folder's `.env` was read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.envfile import DOTENV_ENV, PROJECT_ROOT, dotenv_paths, load_dotenv_files

ROOT = Path(__file__).resolve().parent.parent


def test_the_projects_env_is_the_one_next_to_app_py():
    assert PROJECT_ROOT == ROOT
    assert (PROJECT_ROOT / "app.py").is_file()


@pytest.mark.parametrize(
    ("cwd", "expected"),
    [
        ("elsewhere", ["project", "elsewhere"]),  # the project's first, then the current folder's
        ("project", ["project"]),  # run from the checkout: one file, read once
    ],
)
def test_dotenv_paths_read_the_projects_first(tmp_path, cwd, expected):
    where = {"project": PROJECT_ROOT, "elsewhere": tmp_path}
    assert dotenv_paths(where[cwd], env={}) == [where[name] / ".env" for name in expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),  # the tests' setting: no .env at all
        ("/etc/lead-studio.env", ["/etc/lead-studio.env"]),
        (f"/a/.env{os.pathsep}/b/.env", ["/a/.env", "/b/.env"]),
    ],
)
def test_lead_studio_dotenv_names_the_files_instead(value, expected):
    assert dotenv_paths(Path("/tmp"), env={DOTENV_ENV: value}) == [Path(p) for p in expected]


def test_the_tests_never_read_a_developers_env():
    assert os.environ.get(DOTENV_ENV) == "" and dotenv_paths() == []


@pytest.mark.parametrize(
    ("environment", "project", "here", "expected"),
    [
        ({}, "OPENAI_API_KEY=sk-project", None, "sk-project"),
        ({}, None, "OPENAI_API_KEY=sk-here", "sk-here"),
        ({}, "OPENAI_API_KEY=sk-project", "OPENAI_API_KEY=sk-here", "sk-project"),
        ({"OPENAI_API_KEY": "sk-env"}, "OPENAI_API_KEY=sk-project", "OPENAI_API_KEY=sk-here", "sk-env"),
        ({}, None, None, None),
        ({}, "# only a comment\nOTHER=1", "OPENAI_API_KEY=sk-here", "sk-here"),
    ],
    ids=["project-only", "here-only", "project-wins", "environment-wins", "none", "project-lacks-it"],
)
def test_the_first_value_found_wins_and_the_environment_is_never_replaced(
    tmp_path, environment, project, here, expected
):
    files = []
    for name, text in (("project", project), ("here", here)):
        folder = tmp_path / name
        folder.mkdir()
        files.append(folder / ".env")
        if text is not None:
            files[-1].write_text(text + "\n")
    environ = dict(environment)
    read = load_dotenv_files(files, environ)
    assert environ.get("OPENAI_API_KEY") == expected
    assert read == [f for f, text in zip(files, (project, here), strict=True) if text is not None]


def _run_from(cwd: Path, project: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m lib ARGS` from `cwd`, as if the checkout were `project` (its .env is read from there)."""
    code = (
        "import sys, pathlib, lib.envfile as e; e.PROJECT_ROOT = pathlib.Path(sys.argv[1]);"
        "from lib.cli import main; sys.exit(main(sys.argv[2:]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_") and k != DOTENV_ENV}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", code, str(project), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("project_env", "here_env", "answered"),
    [
        ("good", None, True),  # run from another folder: the project's .env is found
        (None, "good", True),  # a .env in the current folder still works
        ("good", "closed-port", True),  # both: the project's is read first and wins
        (None, None, False),  # none: exit 2 saying where it looked and how to try offline
    ],
    ids=["project", "current-folder", "both", "none"],
)
def test_the_command_line_finds_the_projects_env_from_any_folder(
    sim, tmp_path, project_env, here_env, answered
):
    project, here = tmp_path / "checkout", tmp_path / "elsewhere"
    project.mkdir()
    here.mkdir()
    urls = {"good": sim.url, "closed-port": "http://127.0.0.1:9/v1"}
    for folder, which in ((project, project_env), (here, here_env)):
        if which:
            (folder / ".env").write_text(f"OPENAI_API_KEY=sk-test-envfile\nOPENAI_BASE_URL={urls[which]}\n")
    (here / "leads.csv").write_text("First Name,Company,Title\nAda,Acme,CTO\nGrace,Globex,CEO\n")
    proc = _run_from(
        here, project, "run", "leads.csv", "--prompt", "icebreaker", "--output", "out.csv",
        "--data-dir", str(tmp_path / "results"), "--quiet",
    )  # fmt: skip
    if answered:
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout.strip().splitlines()[-1])["succeeded"] == 2
    else:
        assert proc.returncode == 2
        assert str(project / ".env") in proc.stderr and "make demo-server" in proc.stderr
