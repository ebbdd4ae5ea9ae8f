"""Simulator throughput: requests/s a `SimProcess` serves to a raw-socket keep-alive load generator.

    .venv/bin/python -m bench.bench_simulator [--duration 5] [--write-readme]

The load generator is deliberately not the openai SDK (whose own CPU cost would be measured instead): plain
asyncio streams, one keep-alive connection per worker, every request a distinct row so token counting and
reply building do real work. The simulator runs in its own process; its CPU time comes from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

from bench.readme import replace_section
from lib.sim import SimConfig, SimProcess

README = Path(__file__).resolve().parent / "README.md"
HEADING = "## Simulator throughput"
SYSTEM = "You enrich B2B sales leads. Reply with one short, specific opening line for a cold email."
WARMUP_SECONDS = 1.0


@dataclass
class Scenario:
    name: str
    connections: int
    latency_ms: float
    duration: float


@dataclass
class Result:
    scenario: Scenario
    requests_per_s: float
    errors: int
    sim_cpu_percent: float
    sim_cpu_us_per_request: float
    p50_ms: float
    p99_ms: float


def _request(worker: int, i: int, port: int) -> bytes:
    row = f"Company: Company {worker}-{i} Ltd; Name: Person {i}; Title: Head of Sales; City: Springfield"
    body = json.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": row}],
            "max_tokens": 200,
        }
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer sk-bench\r\n"
        f"Content-Type: application/json\r\nX-Row-Id: {worker}-{i}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _worker(
    worker: int, port: int, stop_at: float, done: list[tuple[float, float]], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = 0
    try:
        while time.monotonic() < stop_at:
            sent = time.monotonic()
            writer.write(_request(worker, i, port))
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) != b"\r\n":
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            finished = time.monotonic()
            if status == 200:
                done.append((finished, finished - sent))
            else:
                errors[0] += 1
            i += 1
    finally:
        writer.close()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _load(port: int, scenario: Scenario) -> tuple[list[tuple[float, float]], int, float, float]:
    done: list[tuple[float, float]] = []
    errors = [0]
    start = time.monotonic()
    stop_at = start + WARMUP_SECONDS + scenario.duration
    workers = [_worker(w, port, stop_at, done, errors) for w in range(scenario.connections)]
    await asyncio.gather(*workers)
    return done, errors[0], start + WARMUP_SECONDS, stop_at


def run(scenario: Scenario) -> Result:
    with SimProcess(SimConfig(latency_ms=scenario.latency_ms)) as server:
        cpu_before = _cpu_seconds(server.pid)
        done, errors, window_start, window_end = asyncio.run(_load(server.port, scenario))
        cpu_after = _cpu_seconds(server.pid)
    total = len(done) + errors
    in_window = sorted(latency for finished, latency in done if window_start <= finished < window_end)
    rate = len(in_window) / scenario.duration
    elapsed = window_end - window_start + WARMUP_SECONDS
    cpu = cpu_after - cpu_before
    return Result(
        scenario,
        rate,
        errors,
        100 * cpu / elapsed,
        1e6 * cpu / max(1, total),
        1000 * in_window[len(in_window) // 2] if in_window else 0.0,
        1000 * in_window[int(len(in_window) * 0.99)] if in_window else 0.0,
    )


def _table(results: list[Result]) -> str:
    lines = [
        "| scenario | connections | latency | requests/s | ideal | errors | p50 | p99 | simulator CPU | CPU per request |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.scenario
        ideal = f"{s.connections / (s.latency_ms / 1000):.0f}" if s.latency_ms else "-"
        lines.append(
            f"| {s.name} | {s.connections} | {s.latency_ms:.0f} ms | {r.requests_per_s:,.0f} | {ideal} | {r.errors} "
            f"| {r.p50_ms:.1f} ms | {r.p99_ms:.1f} ms | {r.sim_cpu_percent:.0f}% | {r.sim_cpu_us_per_request:.0f} µs |"
        )
    return "\n".join(lines)


def _section(results: list[Result]) -> str:
    ceiling = 1e6 / max(r.sim_cpu_us_per_request for r in results)
    machine = f"{os.cpu_count()} cores, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    return f"""{HEADING}

How many requests per second the simulator (`lib/sim/`, raw asyncio HTTP/1.1) serves, so we know it
is never the bottleneck of a client benchmark. The load generator is plain asyncio sockets with keep-alive
(not the openai SDK) in this process; the simulator is a `SimProcess` (its own process and GIL). Every
request is a distinct row, counted with tiktoken and answered in full. "simulator CPU" is its process's CPU
time over the run (100% = one core); the window excludes a {WARMUP_SECONDS:.0f} s warm-up.

```
.venv/bin/python -m bench.bench_simulator            # print the figures
.venv/bin/python -m bench.bench_simulator --write-readme   # and replace this section
```

Measured on {machine}:

{_table(results)}

At 500 ms latency throughput should be connections / 0.5 s, and the simulator spends a small fraction of
a core on it. In the flood the load generator and the simulator compete for the same cores, so the
requests/s figure depends on which gets more; the simulator's own ceiling is about 1 s / (CPU per request),
roughly {ceiling:,.0f} requests/s per core. A client using the openai SDK spends 2-3.5 ms of CPU per request,
so the simulator is not what limits a client benchmark. Figures move by ±30% when other work shares the machine.
"""


def write_readme(section: str) -> None:
    replace_section(section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per scenario")
    parser.add_argument("--write-readme", action="store_true", help=f"update '{HEADING}' in {README.name}")
    args = parser.parse_args()
    scenarios = [
        Scenario("flood", 50, 0.0, args.duration),
        Scenario("latency", 400, 500.0, args.duration),
    ]
    results = []
    for scenario in scenarios:
        result = run(scenario)
        results.append(result)
        print(_table([result]).splitlines()[-1], flush=True)
    print()
    print(_table(results))
    if args.write_readme:
        write_readme(_section(results))
        print(f"\nwrote {README}")


if __name__ == "__main__":
    main()
