"""Driving the real app in headless Chromium: the Streamlit server as a subprocess, and page actions.

Used by tests/test_browser.py. Conventions from design/field-notes.md: Debian's chromium with fixed flags
(never `playwright install`), the server started with `python -m streamlit run` and polled on
/_stcore/health, uploads through the dropzone input, grid cells read through glide's accessibility
table (`glide-cell-COL-ROW`, column 0 is the row_id index).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import openpyxl
import pytest
from playwright.sync_api import Locator, Page, expect

from lib.engine.runs import RunOptions, RunPlan, plan_run
from lib.export import FORMULA_PREFIXES
from lib.leads import read_leads
from lib.prompts.library import PromptLibrary, PromptSpec
from lib.sim import SimProcess, expected_reply

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROW_PX = 35  # glide row and header height in Streamlit's grids
PROMPT = "Icebreaker"
TEST_KEY = "sk-test-browser-0001"


def require_chromium() -> str:
    """The chromium binary; skip locally without it, but fail in CI (browser tests must not vanish)."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    message = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: browser tests may not be skipped)")
    pytest.skip(message)


# --- the app server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`streamlit run app.py` in a subprocess on a fixed port and data dir; can be killed -9 and restarted."""

    def __init__(self, data_dir: Path, log_path: Path, env: Mapping[str, str], port: int | None = None):
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = port or free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
        self.env.update(env, LEAD_STUDIO_DATA_DIR=str(data_dir))
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 40.0) -> AppServer:
        self.starts += 1
        command = [
            sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true",
            "--browser.gatherUsageStats=false", f"--server.port={self.port}", "--server.address=127.0.0.1",
            "--server.fileWatcherType=none",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start #{self.starts}: {' '.join(command)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=1) as response:
                    if response.read().strip() == b"ok":
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"streamlit not healthy within {timeout} s:\n{self.log_tail()}")

    def kill(self) -> None:
        """kill -9 of the server process: no shutdown hooks, worker threads die mid-request."""
        assert self.proc is not None and self.proc.poll() is None, "the server is not running"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# --- waiting ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_app(tmp_path: Path, env: Mapping[str, str]) -> Iterator[AppServer]:
    """The app on its own data dir under `tmp_path`, with `env` (the key and endpoint), stopped after."""
    data = tmp_path / "data"
    data.mkdir()
    server = AppServer(data, tmp_path / "streamlit.log", env)
    server.start()
    print(f"streamlit log: {server.log_path}")
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def browser_tab(browser, viewport: Mapping[str, int], **context_options) -> Iterator[Page]:
    """A fresh browser context (its own cookies and session) and one page in it, closed after."""
    context = browser.new_context(viewport=dict(viewport), **context_options)
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.1):
    """Poll until `predicate()` is truthy (returned); fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)


# --- lead files and what the simulator must answer --------------------------------------------------


def csv_file(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\r\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


def library_prompt(name: str = PROMPT) -> PromptSpec:
    """The shipped library's current version of a prompt: what the app offers under that name today."""
    return PromptLibrary().load(name)


def library_plan(path: Path) -> RunPlan:
    """The Icebreaker run of a lead file as the app plans it with the library prompt's own settings."""
    lead = read_leads(path.read_bytes(), path.name)
    spec = library_prompt()
    options = RunOptions(
        model=spec.model,
        max_tokens=spec.max_tokens,
        temperature=spec.temperature,
        reasoning_effort=spec.reasoning_effort,
    )
    return plan_run(lead.df, spec, options, base_url=None)


def in_waves(rows: list[list[str]], waves: Mapping[int, str], column: str = "Title") -> list[list[str]]:
    """Lead rows (header first) whose data rows from each wave's first position (0-based) on carry that
    wave's mark after their `column` (a field every Icebreaker request shows).

    Holding the answers whose request contains a mark (the simulator's gate) stops a run exactly before that
    wave, whatever the model's speed: the rows before it are answered, the workers wait at its first rows.
    """
    header, *data = rows
    at = header.index(column)
    starts = sorted(waves.items())
    out = [list(header)]
    for pos, row in enumerate(data):
        marks = [mark for first, mark in starts if pos >= first]
        out.append([f"{cell} {marks[-1]}" if i == at and marks else cell for i, cell in enumerate(row)])
    return out


def expected_answers(path: Path) -> dict[int, str]:
    """Row id -> the simulator's reply to that row's Icebreaker request, rebuilt as the app builds it."""
    plan = library_plan(path)
    return {item.row_id: expected_reply(item.body["messages"], item.body["model"]) for item in plan.items}


def request_settings(path: Path) -> dict:
    """What every Icebreaker request of this file carries besides its messages (model, token cap, effort…)."""
    bodies = [{k: v for k, v in item.body.items() if k != "messages"} for item in library_plan(path).items]
    assert all(body == bodies[0] for body in bodies), "the library prompt plans one setting for every row"
    return bodies[0]


def guarded(text: str, fmt: str = "csv") -> str:
    """What an export must hold for a text cell: in CSV, text a spreadsheet would run as a formula behind
    an apostrophe (a plain negative number such as -12 is a number, not a formula); XLSX cells are text
    cells, never evaluated, so they hold the exact text."""
    if fmt == "xlsx":
        return text
    runs_as_formula = text.startswith(FORMULA_PREFIXES) and not re.fullmatch(r"-\d+(\.\d+)?", text)
    return "'" + text if runs_as_formula else text


def read_export(path: Path) -> list[dict[str, str]]:
    """A downloaded CSV (UTF-8 with BOM) or XLSX as a list of {header: cell text}; empty cells as ""."""
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline="")))
    sheet = openpyxl.load_workbook(path, read_only=True).active
    cells = list(sheet.iter_rows())
    formulas = [c.coordinate for row in cells for c in row if getattr(c, "data_type", None) == "f"]
    assert not formulas, f"live formulas in the XLSX export: {formulas[:5]}"
    rows = [[c.value for c in row] for row in cells]
    header = [str(h) for h in rows[0]]
    return [{h: "" if v is None else str(v) for h, v in zip(header, r, strict=True)} for r in rows[1:]]


# --- page actions -----------------------------------------------------------------------------------


def goto_page(page: Page, title: str) -> None:
    """Switch page through the sidebar (same browser session, so session state is kept)."""
    page.get_by_test_id("stSidebar").get_by_test_id("stPageLink").filter(has_text=title).click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()


def upload(page: Page, path: Path) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(path)
    expect(page.get_by_text("Lead table ready")).to_be_visible(timeout=20_000)


def choose_prompt(page: Page, name: str = PROMPT) -> None:
    goto_page(page, "Prompt")
    page.get_by_test_id("stSelectbox").filter(has_text="Start from").click()
    page.get_by_role("option", name=name, exact=True).click()
    expect(page.get_by_text("Every placeholder matches a column.")).to_be_visible(timeout=20_000)


def prepare_run(page: Page, app: AppServer, path: Path, workers: int | None = None) -> None:
    """Open the app, upload a lead file, pick the Icebreaker prompt and land on the Run page."""
    page.goto(app.url)
    upload(page, path)
    choose_prompt(page)
    goto_page(page, "Run")
    if workers is not None:
        field = page.get_by_role("spinbutton", name="Parallel workers")
        field.fill(str(workers))
        field.press("Enter")
        expect(field).to_have_value(str(workers))
    expect(page.get_by_role("button", name="Start run")).to_be_enabled(timeout=20_000)


def run_caption(page: Page) -> Locator:
    """The attached run's caption: 'Model … · status: running · run id ID'."""
    return page.get_by_test_id("stCaptionContainer").filter(has_text=re.compile(r"status: \w+ · run id "))


def run_status(page: Page) -> str | None:
    caption = run_caption(page)
    if not caption.count():
        return None
    match = re.search(r"status: (\w+)", caption.first.inner_text())
    return match.group(1) if match else None


def progress(page: Page) -> tuple[int, int] | None:
    """(done, total) from the live progress bar's text, or None while it is not drawn."""
    bar = page.get_by_test_id("stProgress")
    try:
        text = bar.first.inner_text(timeout=1_000) if bar.count() else ""
    except Exception:  # redrawn between count() and inner_text(): try again on the next poll
        return None
    match = re.search(r"([\d,]+) of ([\d,]+) rows", text)
    return (int(match.group(1).replace(",", "")), int(match.group(2).replace(",", ""))) if match else None


def wait_done_at_least(page: Page, rows: int, timeout: float = 30.0) -> int:
    return wait_for(
        lambda: (p := progress(page)) and p[0] >= rows and p[0], timeout, f"{rows} rows done on the page"
    )


def wait_finished(page: Page, total: int, timeout: float = 60.0) -> None:
    expect(run_caption(page)).to_contain_text("status: finished", timeout=timeout * 1000)
    expect(page.get_by_test_id("stProgress")).to_contain_text(
        f"{total:,} of {total:,} rows · {total:,} answered"
    )


def hold_answers(sim: SimProcess, text: str | bool = True) -> None:
    """Close the simulator's gate on answers: every one, or those whose request contains `text`.

    A held answer is neither sent nor billed until `release_answers`, so a run that needs one cannot finish,
    however fast the model answers: a test that needs a run in progress holds it rather than racing it.
    """
    sim.configure(hold=text)


def wait_held(sim: SimProcess, in_flight: int) -> None:
    """Wait until the run's `in_flight` requests all wait at the gate: from then on it stands still."""
    try:
        wait_for(lambda: sim.stats()["held_now"] == in_flight, 30, f"{in_flight} requests held at the gate")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the simulator's counts: {sim.stats()}") from None


def release_answers(sim: SimProcess) -> None:
    """Open the gate: every held answer goes on its way (and is billed, even to a client that has gone)."""
    sim.configure(hold=False)


def scroll_grid_right(grid: Locator) -> None:
    """Glide renders (and exposes) only the visible columns: bring the rightmost ones into view."""
    grid.locator(".dvn-scroller").evaluate("e => { e.scrollLeft = e.scrollWidth; }")


def grid_cell(grid: Locator, col: int, row: int) -> Locator:
    return grid.locator(f"#glide-cell-{col}-{row}")


def edit_cell(page: Page, grid: Locator, col: int, row: int, current: str, text: str) -> None:
    """Open a cell of an editable grid with the keyboard, replace its text, press Enter.

    Glide draws on a canvas: the row's index cell is clicked, the arrow keys move to the column and
    Enter opens the cell's editor, as a person using the keyboard would. The editor must open on the
    expected text, which proves it is the intended cell.
    """
    grid.scroll_into_view_if_needed()
    y = ROW_PX * (row + 1) + ROW_PX / 2
    editor = page.get_by_test_id("portal").locator("textarea")
    for _attempt in range(3):  # a live grid redraws twice a second: a redraw can drop the selection
        grid.click(position={"x": 20, "y": y})
        for _ in range(col):
            page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")
        try:
            editor.wait_for(state="visible", timeout=3_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    expect(editor).to_be_visible()
    expect(editor).to_have_value(current)
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(text)
    expect(editor).to_have_value(text)
    # Glide keeps the typed text in React state: an Enter in the same frame as the last keystroke (which
    # no person manages) commits the old value. Let two frames render first, as a typist's pause would.
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    page.keyboard.press("Enter")
    expect(editor).to_be_hidden()


def scroll_to_top(page: Page) -> None:
    """Bring the top of the page back into view (Start leaves it scrolled down), without waiting on an
    element that a live panel may be redrawing."""
    page.evaluate(
        """() => {
            for (const e of [document.scrollingElement, ...document.querySelectorAll(
                '[data-testid=stMain], [data-testid=stAppViewContainer]')]) { if (e) e.scrollTop = 0; }
        }"""
    )


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=path)
    return path
