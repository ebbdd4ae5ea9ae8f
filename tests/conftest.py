"""Shared fixtures: a fresh data directory per test, and the local OpenAI-compatible server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_real_openai(monkeypatch):
    """No test may reach the internet or need a key: clear anything the developer's shell carries."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh, empty data directory (the store, exports) for one test."""
    path = tmp_path / "results"
    path.mkdir()
    return path


# The day the tests live on: the simulator's shutdowns and the client's retirement guard both read it, so no
# test depends on the calendar (a model that shuts down next month must not fail the suite next month).
TEST_TODAY = "2026-12-05"


@pytest.fixture(scope="session", autouse=True)
def _fixed_today():
    os.environ["LEAD_STUDIO_TODAY"] = TEST_TODAY  # inherited by the app and CLI processes tests start


@pytest.fixture(scope="session", autouse=True)
def _no_developer_dotenv():
    """A developer's own .env (a real key) must never reach a test, nor the app and CLI processes tests start."""
    os.environ["LEAD_STUDIO_DOTENV"] = ""


@pytest.fixture(scope="session", autouse=True)
def _tiktoken_cache(tmp_path_factory):
    """Each session seeds its own tiktoken cache from the shipped files, proving the offline path."""
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("tiktoken"))


# ----- Simulator fixtures (lib/sim/) ---------------------------------------------------------------------

SIM_TODAY = "2026-12-05"  # the simulator's date for shutdowns: no test depends on the calendar


@pytest.fixture(scope="session")
def sim_server():
    """One in-process OpenAI-compatible simulator per test session (per xdist worker)."""
    from lib.sim import SimConfig, SimServer

    server = SimServer(SimConfig(today=SIM_TODAY)).start()
    yield server
    server.stop()


@pytest.fixture
def sim(sim_server):
    """The session simulator, reset to a default config (empty ledger, stats and limits) for this test."""
    from lib.sim import SimConfig

    sim_server.reset(SimConfig(today=SIM_TODAY))
    yield sim_server


@pytest.fixture
def openai_client(sim):
    """The real openai SDK pointed at the simulator: no retries, a short timeout."""
    import openai

    return openai.OpenAI(api_key="sk-test-simulator", base_url=sim.url, max_retries=0, timeout=10)


# ----- AppTest fixtures (the test_app*.py modules use them with pytestmark = usefixtures("app_env")) ---------


@pytest.fixture
def app_env(monkeypatch, data_dir):
    """The app under AppTest: its own data dir, and app.py's router (not the pages/ folder) in charge."""
    from tests.apptest_helpers import patch_pages_directory

    patch_pages_directory(monkeypatch)
    monkeypatch.setenv("LEAD_STUDIO_DATA_DIR", str(data_dir))


@pytest.fixture
def keyed(monkeypatch, sim):
    """A key and endpoint from the environment, pointing at the local simulator."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-app-0001")
    monkeypatch.setenv("OPENAI_BASE_URL", sim.url)
    return sim


# ----- Browser fixtures (Playwright driving Debian's chromium; see tests/browser_helpers.py) ---------------


@pytest.fixture(scope="session")
def chromium_path():
    """Checked before anything starts: skip without chromium locally, fail under CI=true."""
    from tests.browser_helpers import require_chromium

    return require_chromium()


@pytest.fixture(scope="module")
def chromium(chromium_path):
    """One headless chromium per test module."""
    from playwright.sync_api import sync_playwright

    from tests.browser_helpers import CHROMIUM_ARGS

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
