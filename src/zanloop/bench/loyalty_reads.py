"""Part (3) of ``zanloop bench loyalty``: ``GET /v1/loyalty/members/{user}/balance`` through
HTTP, against a live API (one uvicorn worker, a child process) serving the last SQLite pass's
file, from raw-socket client threads; every answer checked against the independent computation.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from zanloop.bench.loyalty_ingest import Seeded
from zanloop.bench.loyalty_workload import Expected, LoyaltySizes
from zanloop.bench.notify import server_stack
from zanloop.bench.pins import RawResult, http_request, raw_load
from zanloop.bench.report import Report, ms, percentile
from zanloop.bench.server import COMMAND, ServerProcess

READ_SECTION = "(3)"
TARGET_READ_P99_SECONDS = 0.002
READ_CONCURRENCY = 4


def reads(
    report: Report,
    workdir: Path,
    served: tuple[Path, Seeded],
    model: Expected,
    sizes: LoyaltySizes,
) -> None:
    section = READ_SECTION
    path, seeded = served
    rng = random.Random(20261128)
    users = sorted(model.members)
    picks = [rng.choice(users) for _ in range(sizes.read_warmup + sizes.reads)]
    auth = {"Authorization": f"Bearer {seeded.api_key}"}
    c = READ_CONCURRENCY
    with ServerProcess(f"sqlite:///{path}", workdir) as server:
        requests = [
            http_request("GET", f"/v1/loyalty/members/{u}/balance", server.port, auth)
            for u in picks
        ]
        warmup = raw_load(server.port, requests[: sizes.read_warmup], c)
        timed_requests = requests[sizes.read_warmup :]
        cpu_before, client_before = server.cpu_seconds(), time.process_time()
        timed = raw_load(server.port, timed_requests, c, keep=True)
        cpu_after, client_after = server.cpu_seconds(), time.process_time()
    latencies = sorted(timed.latencies)
    p99 = percentile(latencies, 99)
    report.add(
        section,
        f"balance reads/s, HTTP, SQLite, c={c}",
        f"{timed.count / timed.seconds:,.0f}/s" if timed.seconds else "n/a",
    )
    report.add(section, "latency p50", ms(percentile(latencies, 50)))
    report.add(
        section,
        "latency p99",
        ms(p99),
        f"<= {ms(TARGET_READ_P99_SECONDS)}",
        p99 <= TARGET_READ_P99_SECONDS,
    )
    report.add(section, "latency max", ms(latencies[-1] if latencies else float("nan")))
    if cpu_before is not None and cpu_after is not None and timed.count:
        server_cpu = (cpu_after - cpu_before) / timed.count
        report.add(section, "server CPU per read", ms(server_cpu))
        report.add(section, "  => one-core ceiling at that cost", f"{1 / server_cpu:,.0f}/s")
    if timed.count:
        client_cpu = (client_after - client_before) / timed.count
        report.add(section, f"client CPU per read ({c} raw-socket threads)", ms(client_cpu))
    report.add(section, "reads timed (+ untimed warm-up)", f"{timed.count:,} (+{warmup.count:,})")
    report.add(section, "server: a child process, 1 worker", COMMAND)
    report.add(section, "  HTTP stack", server_stack(python_is_ours=True))
    _check_status(report, f"{section} every warm-up read answered 200", warmup, sizes.read_warmup)
    _check_status(report, f"{section} every timed read answered 200", timed, sizes.reads)
    wrong = []
    for i, body in timed.bodies.items():
        user = picks[sizes.read_warmup + i]
        available, pending, tier = model.balance(user)
        want = {
            "user_id": user,
            "available": available,
            "pending": pending,
            "held": 0,
            "tier": tier,
        }
        try:
            got = json.loads(body)
        except ValueError:
            got = body
        if got != want:
            wrong.append(f"{user}: {got} != {want}")
    report.check(
        f"{section} balances read == the independent computation",
        not wrong and len(timed.bodies) == sizes.reads,
        f"{len(timed.bodies):,} answers"
        + (f"; {len(wrong)} differ, first {wrong[0]}" if wrong else ""),
    )


def _check_status(report: Report, name: str, result: RawResult, expected_count: int) -> None:
    ok = dict(result.statuses) == {200: expected_count} and not result.errors
    detail = f"{expected_count:,} x 200" if ok else f"statuses {dict(result.statuses)}"
    if result.errors:
        detail += f"; {len(result.errors)} errors, first: {result.errors[0]}"
    report.check(name, ok, detail)
