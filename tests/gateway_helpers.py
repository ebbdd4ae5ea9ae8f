"""A real LiteLLM proxy on loopback for tests: its own venv (`make gateway`), nothing installed at run time.

The config has `mock_response` models (answered by the proxy itself), a model with the proxy's own rpm
limit, and models routed to the project's simulator as their upstream. LiteLLM silently moves to another
port when its port is taken, so the port is read back from its own log and checked.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
# The proxy's venv (`make gateway`); LEAD_STUDIO_GATEWAY_VENV points at another checkout's (a git worktree).
GATEWAY_VENV = Path(os.environ.get("LEAD_STUDIO_GATEWAY_VENV") or ROOT / ".venv-gateway")
GATEWAY_BIN = GATEWAY_VENV / "bin" / "litellm"
MASTER_KEY = "sk-gateway-master-0123456789"
UPSTREAM_KEY = "sk-upstream-9876543210"
MOCK_REPLY = "Hello from the gateway's mock."
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


@dataclass
class Gateway:
    url: str
    key: str
    log: Path
    version: str


def gateway_version() -> str | None:
    """The litellm release in .venv-gateway, or None when that venv is missing."""
    meta = list((GATEWAY_VENV / "lib").glob("python*/site-packages/litellm-*.dist-info"))
    return meta[0].name.removeprefix("litellm-").removesuffix(".dist-info") if meta else None


def require_gateway() -> None:
    """Skip with the reason locally when the gateway venv is missing; under CI that is a failure."""
    if GATEWAY_BIN.exists():
        return
    reason = f"{GATEWAY_BIN} is missing: run `make gateway` (a LiteLLM proxy in its own venv)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, upstream_url: str) -> None:
    upstream = {"api_base": upstream_url, "api_key": UPSTREAM_KEY}
    config = {
        "model_list": [
            {
                "model_name": "mock-ok",
                "litellm_params": {"model": "openai/gpt-4o-mini", "mock_response": MOCK_REPLY},
            },
            {
                "model_name": "mock-limited",  # the proxy's own limiter: one answer, then 429s
                "litellm_params": {"model": "openai/gpt-4o-mini", "mock_response": MOCK_REPLY, "rpm": 1},
            },
            {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini", **upstream}},
        ],
        # Pre-call checks make a deployment's rpm a limit the proxy enforces itself (429, retry-after 60).
        "router_settings": {"routing_strategy": "usage-based-routing-v2", "enable_pre_call_checks": True},
        "litellm_settings": {"num_retries": 0, "request_timeout": 20, "telemetry": False},
        "general_settings": {"master_key": MASTER_KEY},
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def start_gateway(workdir: Path, upstream_url: str, timeout: float = 90.0):
    """Start the proxy; returns (Gateway, process) once it answers on the port it really got."""
    require_gateway()
    config = workdir / "litellm.yaml"
    write_config(config, upstream_url)
    log = workdir / "litellm.log"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_", "DATABASE_URL"))}
    env.update(LITELLM_TELEMETRY="False", NO_DOCS="True", PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(GATEWAY_BIN), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"litellm exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}"
            )
        found = _LISTENING.search(log.read_text(errors="replace"))
        if found:
            real = int(found.group(1))  # not always `port`: it moves on silently when that one is taken
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{real}/health/liveliness", timeout=2) as r:
                    if r.status == 200:
                        return Gateway(
                            f"http://127.0.0.1:{real}/v1", MASTER_KEY, log, gateway_version() or "?"
                        ), proc
            except OSError:
                pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(
        f"litellm did not start within {timeout:.0f}s: {log.read_text(errors='replace')[-2000:]}"
    )


def stop_gateway(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
