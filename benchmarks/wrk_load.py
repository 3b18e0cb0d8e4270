"""Load from `wrk` for the service benchmark: one phase at a fixed rate or at the max, and
every phase on every target in turn.

`wrk` (C, one thread, keep-alive connections) runs as a separate process: a Python client
would cost more per request than the service does and inflate every latency. Paced phases
draw exponential gaps per connection (Poisson arrivals) through wrk's `delay()` hook.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

RATES = (50, 200, 500)
CONNECTIONS = 8


def wrk_phase(
    url: str,
    bodies: list[str],
    headers: dict[str, str],
    seconds: float,
    rate: float | None,
    connections: int = CONNECTIONS,
) -> dict[str, Any]:
    """One wrk run: paced to `rate` requests/s over all connections, or as fast as it goes."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench_service: wrk not found; install it (apt-get install wrk)")
    lines = [
        'wrk.method = "POST"',
        "local bodies = {" + ", ".join(json.dumps(b) for b in bodies) + "}",
        "local n = 0",
        "function request()",
        "  n = n + 1",
        "  return wrk.format(nil, nil, nil, bodies[n % #bodies + 1])",
        "end",
    ]
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if rate is not None:
        # Exponential gaps (Poisson arrivals) with the rate's mean per connection: a fixed
        # gap keeps the connections in step, so "50 rps" would arrive as bursts of 8.
        mean_ms = connections * 1000.0 / rate
        lines += [
            "math.randomseed(7)",
            "function delay()",
            f"  return -{mean_ms} * math.log(1 - math.random())",
            "end",
        ]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(int(seconds), 1)}s", "--latency"]
    command += ["--timeout", "5s", "-s", script.name, url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60).stdout
    Path(script.name).unlink()
    result: dict[str, Any] = {"errors": 0}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("Requests/sec:"):
            result["rps"] = float(parts[1])
        elif line.strip().startswith("Non-2xx"):
            result["errors"] += int(parts[-1])
        elif line.strip().startswith("Socket errors:"):
            result["errors"] += sum(int(p.rstrip(",")) for p in parts[3::2])
        elif len(parts) == 2 and parts[0] in ("50%", "75%", "90%", "99%"):
            result[f"p{parts[0][:-1]}_ms"] = _wrk_ms(parts[1])
        elif "requests in" in line:
            result["requests"] = int(parts[0])
    if "rps" not in result:
        raise RuntimeError(f"wrk printed no result for {url}:\n{out}")
    return result


# One connection, back to back: the service's own per-request latency, warm, as the
# in-process floor is measured (paced phases add the machine's idle wake-ups on both ends).
PHASES: list[tuple[str, float | None, int]] = [
    ("sequential", None, 1),
    *((str(rate), float(rate), CONNECTIONS) for rate in RATES),
    ("max", None, CONNECTIONS),
]


def run_load(url: str, bodies: list[str], headers: dict[str, str], seconds: float) -> Any:
    return run_side_by_side({"one": (url, bodies, headers)}, seconds)["one"]


def run_side_by_side(
    targets: dict[str, tuple[str, list[str], dict[str, str]]], seconds: float
) -> dict[str, dict[str, Any]]:
    """Every phase on every target in turn (not target after target), so that a change in the
    machine's load during the run falls on all targets alike."""
    results: dict[str, dict[str, Any]] = {name: {} for name in targets}
    for key, rate, connections in PHASES:
        for name, (url, bodies, headers) in targets.items():
            results[name][key] = wrk_phase(url, bodies, headers, seconds, rate, connections)
    return results


def _wrk_ms(text: str) -> float:
    for unit, factor in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return round(float(text[: -len(unit)]) * factor, 3)
    return float("nan")
