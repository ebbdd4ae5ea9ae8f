"""Driving the Streamlit app with AppTest: start it, upload, switch pages, wait for a run, read all text."""

from __future__ import annotations

import time
from pathlib import Path

from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")
LEADS_CSV = (
    "First Name,Title,Company,Industry,City,# Employees\r\n"
    "Ann,VP Sales,Acme,software,Boston,50\r\n"
    "Bob,CEO,Globex,retail,Austin,10\r\n"
    "Li,SDR,Initech,,Austin,200\r\n"
    "Zoë,Head of Growth,Umbrella,biotech,Newark,75\r\n"
).encode()


def patch_pages_directory(monkeypatch) -> None:
    """AppTest re-detects a pages/ folder before every run and then runs the page file alone (MPA v1),
    skipping app.py and its sidebar; a real server stops doing that once st.navigation ran. Keep it off."""
    original = PagesManager.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init)


def new_app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, at.exception
    return at


def upload(at: AppTest, name: str = "leads.csv", data: bytes = LEADS_CSV, mime: str = "text/csv") -> AppTest:
    goto(at, "data")
    at.file_uploader(key="upload").set_value((name, data, mime)).run()
    assert not at.exception, at.exception
    return at


def choose_prompt(at: AppTest, name: str = "Icebreaker") -> AppTest:
    goto(at, "prompt")
    at.selectbox(key="p_source").set_value(name).run()
    assert not at.exception, at.exception
    return at


def run_status(at: AppTest) -> str | None:
    for caption in at.caption:
        if "status: " in caption.value:
            return caption.value.split("status: ")[1].split(" ·")[0]
    return None


def wait_for_run(at: AppTest, timeout: float = 30.0) -> str:
    """run_every never fires under AppTest: rerun until the attached run has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at.run()
        assert not at.exception, at.exception
        status = run_status(at)
        if status and status not in ("pending", "running"):
            return status
        time.sleep(0.2)
    raise AssertionError(f"the run did not end within {timeout} s (status {run_status(at)})")


def running_tries(at: AppTest) -> list[str]:
    """Labels of the workbench columns whose sample run is still going (AppTest shares the registry)."""
    from lib import engine

    ws = workspace(at)
    jobs = {v.label: engine.get_job(v.run_id) for v in ws.workbench.variants if v.run_id} if ws else {}
    return [label for label, job in jobs.items() if job is not None and job.active]


def wait_for_tries(at: AppTest, timeout: float = 30.0) -> AppTest:
    """Try returns at once and the page polls the run, but run_every never fires under AppTest: wait
    until every column's run has ended, then rerun so the page draws the answers."""
    deadline = time.monotonic() + timeout
    while _drew_a_running_try(at) or running_tries(at):
        while running_tries(at):
            if time.monotonic() > deadline:
                raise AssertionError(f"the tries did not end within {timeout} s: {running_tries(at)}")
            time.sleep(0.05)
        at.run()  # the page as the timer would redraw it once the try has ended
        assert not at.exception, at.exception
    return at  # with nothing started, the page as drawn (with any message) is the answer


def _drew_a_running_try(at: AppTest) -> bool:
    """The page shows a try in progress (its panel's Stop button), though the try may have ended since."""
    return any(b.key == "btn_try_stop" for b in at.button)


def all_text(at: AppTest) -> str:
    """Every element's protobuf, as text: labels, values, captions, tables' bytes."""
    out: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        children = getattr(node, "children", None) or {}
        for child in children.values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def workspace(at: AppTest):
    """The workspace this AppTest session has open, as saved in the store (the app's only truth)."""
    import os

    from lib.store import Store
    from lib.workspace import Workspaces

    store = Store(os.environ["LEAD_STUDIO_DATA_DIR"])
    try:
        return Workspaces(store).load(at.session_state["ws_id"])
    finally:
        store.close()


def lead_df(at: AppTest):
    """The lead table the workspace's file and read options give, or None when it can't be read."""
    import os

    from lib.leads import LeadFileError, read_leads
    from lib.store import Store
    from lib.workspace import Workspaces

    ws = workspace(at)
    if ws is None or ws.lead is None:
        return None
    store = Store(os.environ["LEAD_STUDIO_DATA_DIR"])
    try:
        data = Workspaces(store).file_bytes(ws.lead.digest)
    finally:
        store.close()
    src = ws.lead
    try:
        return read_leads(data, src.file_name, sheet=src.sheet, encoding=src.encoding, ragged=src.ragged).df
    except LeadFileError:
        return None


def edit_workspace(at: AppTest, change) -> None:
    """Change the saved workspace behind the app's back (as another tab would)."""
    import os

    from lib.store import Store
    from lib.workspace import Workspaces

    store = Store(os.environ["LEAD_STUDIO_DATA_DIR"])
    try:
        spaces = Workspaces(store)
        ws = spaces.load(at.session_state["ws_id"])
        change(ws)
        spaces.save(ws)
    finally:
        store.close()
