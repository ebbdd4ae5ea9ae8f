"""The project's own OpenAI-compatible HTTP server, for tests, benchmarks and the offline demo.

    python -m lib.sim --port 0 --latency-ms 500 --rpm 3000 --p-500 0.05 --seed 7

prints one line `SIMULATOR_URL=http://127.0.0.1:PORT/v1` and serves until SIGTERM/SIGINT. In Python,
`SimServer` runs it on an event loop in a daemon thread, `SimProcess` in a subprocess (its own GIL, and
something to kill -9). Behaviour lives in `lib.sim.app`, replies in `lib.sim.replies`, limits in `lib.sim.limits`.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import http.client
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lib.sim.app import SimApp, SimConfig
from lib.sim.http11 import start_http_server
from lib.sim.replies import expected_json, expected_reply, reply_tag

__all__ = ["SimConfig", "SimServer", "SimProcess", "expected_reply", "expected_json", "reply_tag", "main"]

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
_URL_PREFIX = "SIMULATOR_URL="


class SimServer:
    """The simulator in this process, on its own event loop in a daemon thread."""

    def __init__(
        self,
        config: SimConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ledger_path: str | os.PathLike | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.app = SimApp(config, ledger_path)
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @property
    def config(self) -> SimConfig:
        return self.app.config

    def start(self) -> SimServer:
        """Start listening; returns once the port is bound."""
        ready: concurrent.futures.Future[int] = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="sim-server", daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=30)
        self.url = f"http://{_url_host(self.host)}:{self.port}/v1"
        return self

    def _run(self, ready: concurrent.futures.Future[int]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            self._server = loop.run_until_complete(
                start_http_server(self.app.handle, self.host, self.port, self.app.registry)
            )
        except BaseException as err:
            ready.set_exception(err)
            loop.close()
            return
        ready.set_result(self._server.sockets[0].getsockname()[1])
        try:
            loop.run_forever()
        finally:
            self.app.close()
            loop.run_until_complete(asyncio.sleep(0))
            loop.close()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            self.app.close()
            loop.stop()

        loop.call_soon_threadsafe(shutdown)
        thread.join(timeout=10)
        self._thread = None

    def _call(self, fn: Callable[[], T]) -> T:
        """Run `fn` on the server's loop (where all simulator state lives) and return its result."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            return fn()
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                result.set_result(fn())
            except BaseException as err:
                result.set_exception(err)

        self._loop.call_soon_threadsafe(run)
        return result.result(timeout=10)

    def ledger(self) -> list[dict]:
        return self._call(self.app.ledger)

    def stats(self) -> dict:
        return self._call(self.app.stats)

    def configure(self, **changes: Any) -> None:
        self._call(lambda: self.app.configure(**changes))

    def reset(self, config: SimConfig | None = None) -> None:
        self._call(lambda: self.app.reset(config))

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimProcess:
    """The simulator as a real subprocess (`python -m lib.sim`); admin calls go over HTTP."""

    def __init__(
        self,
        config: SimConfig | None = None,
        port: int = 0,
        ledger_path: str | os.PathLike | None = None,
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.config = config or SimConfig()
        self.host = host
        self.port = port
        self.ledger_path = ledger_path
        self.env = env
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "lib.sim", "--host", self.host, "--port", str(self.port)]
        if self.ledger_path is not None:
            argv += ["--ledger", str(self.ledger_path)]
        return argv + config_to_argv(self.config)

    def start(self, timeout: float = 30.0) -> SimProcess:
        """Spawn the server and wait for its SIMULATOR_URL line."""
        env = {**os.environ, **(self.env or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=env, stdout=subprocess.PIPE)
        # selectors (poll/epoll), not select.select: a process with 1,024 files open already gets a
        # descriptor select() refuses ("filedescriptor out of range").
        with selectors.DefaultSelector() as waiting:
            waiting.register(self.proc.stdout, selectors.EVENT_READ)
            ready = waiting.select(timeout)
        line = self.proc.stdout.readline().decode().strip() if ready else ""
        if not line.startswith(_URL_PREFIX):
            self.kill()
            raise RuntimeError(f"simulator did not start (got {line!r})")
        self.url = line.removeprefix(_URL_PREFIX)
        self.port = int(self.url.rsplit(":", 1)[1].split("/", 1)[0])
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def kill(self) -> None:
        """kill -9: no clean shutdown, for crash tests."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def _admin(self, method: str, path: str, body: dict | None = None) -> Any:
        conn = http.client.HTTPConnection(_url_host(self.host), self.port, timeout=10)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            conn.request(method, path, body=payload, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"simulator admin {path}: {response.status} {data[:200]!r}")
        return json.loads(data)

    def ledger(self) -> list[dict]:
        return self._admin("GET", "/_sim/ledger")

    def stats(self) -> dict:
        return self._admin("GET", "/_sim/stats")

    def configure(self, **changes: Any) -> None:
        self.config = SimConfig.from_dict(self._admin("POST", "/_sim/config", changes))

    def reset(self, config: SimConfig | None = None) -> None:
        result = self._admin("POST", "/_sim/reset", config.to_dict() if config is not None else None)
        self.config = SimConfig.from_dict(result)

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


# ----- command line ---------------------------------------------------------------------------------------


def _field_parser(field: dataclasses.Field, hint: Any) -> tuple[Callable[[str], Any], str]:
    """How to read one SimConfig field from the command line, and a metavar."""
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
        inner, metavar = _field_parser(field, hint)
        empty_is_none = typing.get_origin(hint) is not tuple  # "" is an empty list, "none" is None
        return (
            lambda text: None if text.lower() == "none" or (empty_is_none and not text) else inner(text)
        ), metavar
    if typing.get_origin(hint) is tuple:
        return (lambda text: tuple(part.strip() for part in text.split(",") if part.strip())), "A,B,..."
    if typing.get_origin(hint) is dict:
        return _json_object, "JSON"
    if hint is bool:
        return _boolean, "BOOL"
    return hint, hint.__name__.upper()


def _json_object(text: str) -> dict:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, not {text!r}")
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, not {text!r}")


def config_to_argv(config: SimConfig) -> list[str]:
    """The CLI flags reproducing `config` (only those that differ from the defaults)."""
    default = SimConfig()
    argv: list[str] = []
    for field in dataclasses.fields(SimConfig):
        value = getattr(config, field.name)
        if value == getattr(default, field.name):
            continue
        if isinstance(value, tuple):
            text = ",".join(value)
        elif isinstance(value, dict):
            text = json.dumps(value)
        else:
            text = "none" if value is None else str(value)
        argv += [f"--{field.name.replace('_', '-')}", text]
    return argv


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lib.sim", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--ledger", default=None, help="append billed requests as JSON lines to this file")
    parser.add_argument("--config", default=None, help="a JSON object of config fields (flags override it)")
    hints = typing.get_type_hints(SimConfig)
    for field in dataclasses.fields(SimConfig):
        parse, metavar = _field_parser(field, hints[field.name])
        parser.add_argument(
            f"--{field.name.replace('_', '-')}",
            dest=field.name,
            type=parse,
            default=argparse.SUPPRESS,
            metavar=metavar,
            help=f"default: {getattr(SimConfig(), field.name)}",
        )
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    values = json.loads(args.config) if args.config else {}
    values.update(
        {f.name: getattr(args, f.name) for f in dataclasses.fields(SimConfig) if hasattr(args, f.name)}
    )
    return SimConfig.from_dict(values)


async def _serve(app: SimApp, host: str, port: int) -> None:
    server = await start_http_server(app.handle, host, port, app.registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Handlers first: whoever reads this line may send SIGTERM at once.
    bound = server.sockets[0].getsockname()[1]
    print(f"{_URL_PREFIX}http://{_url_host(host)}:{bound}/v1", flush=True)
    await stop.wait()
    server.close()
    app.close()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as err:
        print(f"simulator: {err}", file=sys.stderr)
        return 2
    app = SimApp(config, args.ledger)
    asyncio.run(_serve(app, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
