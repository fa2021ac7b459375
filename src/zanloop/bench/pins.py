"""``zanloop bench pins``: the pinned list read over HTTP on a large database, and pin purchases
settled per second.

Setup (untimed; its time is a row of the table): a fresh SQLite file migrated by
``zanloop.migrate.upgrade``; one tenant (``tenancy.service.create_tenant``, which gives it a
sandbox merchant and an API key); creators, content items and pins inserted in bulk through the
SQLAlchemy Core tables (``executemany`` of plain dicts, a few large transactions). Content
popularity follows a Zipf law (weight ``1 / (rank + offset)``): the pins are spread over the
content items by it, and so are the reads and the purchases. Pins have mixed statuses; most are
ACTIVE, some are timed (live ones expire an hour or more after seeding, the others have run
out, some still ACTIVE awaiting the expiry sweep, which reads must hide).

(1) One live API process (``python -m zanloop.cli serve --no-worker``: one uvicorn worker, no
job worker) answers ``GET /v1/contents/{id}/pins`` from ``READ_CONCURRENCY`` client threads,
closed loop, over keep-alive connections. First every content is read once in random order
(untimed, reported on its own: each list is built from the pins table, as after a change), then
a warm-up, then the timed reads of the popularity mix, so the timed figures are those of a
server that has served every content before. The client writes raw HTTP/1.1 on its own
sockets: an ``httpx`` client costs ~0.3 ms of CPU per request, which on a 2-core machine would
cap the figure below the target whatever the server does.

(2) Purchases: ``PURCHASE_CONCURRENCY`` threads bind viewers (``PUT /v1/bindings/{user}``) and
buy pins (``POST /v1/pins``); the sandbox buyer pays each order (``sandbox.service.pay``, what
``POST /v1/sandbox/orders/{no}/pay`` runs), which queues the signed, encrypted notification.
Timed: those notifications POSTed to ``/v1/payments/notify/{tenant_id}`` (as ``bench notify``
does); each answer 204 means the order settled and, in the same transaction, the pin went live
with its two ledger transfers.

Self-checks: the seeded counts; every request answered as expected; every purchased pin ACTIVE
and activated exactly once (one ``pin.activated`` notice each, replayed notifications change
nothing); ``pins:sales`` back to 0 with the creators and the platform holding exactly their
shares; and sampled pinned lists equal to an independent computation (raw ``sqlite3``, sorted in
Python by amount desc, then activation time, then id; the top ``slots`` pinned, the next 100
queued).
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import random
import socket
import sqlite3
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
from sqlalchemy import func, insert, select

from zanloop import migrate
from zanloop.bench.load import Call, LoadResult, run_load
from zanloop.bench.notify import server_stack
from zanloop.bench.report import Report, load_average, load_note, ms, percentile, rate
from zanloop.bench.server import COMMAND, ServerProcess
from zanloop.db import Database
from zanloop.kit.money import Asset
from zanloop.ledger import service as ledger
from zanloop.payments import service as payments
from zanloop.payments.tables import PaymentOrder, ProviderNotification
from zanloop.pins.tables import Content, Creator, Pin, PinNotice
from zanloop.sandbox import service as sandbox
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import TenantKind

SEED_SECTION = "seed"
READ_SECTION = "(1)"
BUY_SECTION = "(2)"
READ_CONCURRENCY = 4
PURCHASE_CONCURRENCY = 8
TARGET_READS_PER_SECOND = 5_000
TARGET_READ_P99_SECONDS = 0.003
TARGET_SETTLED_PER_SECOND = 1_000
# The default pin policy's slots and queue length; every tenth creator overrides the slots.
DEFAULT_SLOTS = 3
OVERRIDE_SLOTS = 5
QUEUE_LIMIT = 100
RANDOM_SEED = 20261126
ROWS_PER_EXECUTE = 20_000
ROWS_PER_TRANSACTION = 250_000
# Amounts a viewer picks most (fen) and how often; the rest are log-uniform 0.10-316 CNY.
COMMON_AMOUNTS = (10, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000)
COMMON_WEIGHTS = (20, 15, 20, 10, 12, 10, 5, 4, 3, 1)
REGIONS = ("Guangdong", "Zhejiang", "Sichuan", "Beijing", "Shanghai", "Hubei", None)
KINDS = ("video", "live", "post")


@dataclass(frozen=True)
class PinSizes:
    creators: int
    contents: int
    pins: int
    read_warmup: int
    # The timed reads end after ``read_seconds`` or ``read_max`` reads, whichever comes first.
    read_seconds: float
    read_max: int
    purchases: int
    settle_warmup: int
    replays: int
    samples: int


DEFAULT = PinSizes(
    creators=100,
    contents=10_000,
    pins=1_000_000,
    read_warmup=2_000,
    read_seconds=20.0,
    read_max=500_000,
    purchases=3_000,
    settle_warmup=100,
    replays=100,
    samples=300,
)
QUICK = PinSizes(
    creators=10,
    contents=200,
    pins=20_000,
    read_warmup=100,
    read_seconds=30.0,
    read_max=600,
    purchases=50,
    settle_warmup=10,
    replays=10,
    samples=60,
)


def run_pins(*, quick: bool = False) -> Report:
    sizes = QUICK if quick else DEFAULT
    report = Report(
        f"zanloop bench pins ({'quick' if quick else 'default'} sizes) | "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"{os.cpu_count()} CPUs"
    )
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="zanloop-bench-pins-") as tmp:
        workdir = Path(tmp)
        path = workdir / "pins.db"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        db = Database(url)
        server = ServerProcess(url, workdir)
        took: list[str] = []
        try:
            world = seed(db, path, sizes)
            _report_seed(report, db, world, sizes, path)
            steps: list[tuple[str, Callable[[], None]]] = [
                ("(1)", lambda: reads(report, server, world, sizes)),
                ("(2)", lambda: purchases(report, db, server, world, sizes)),
                ("list checks", lambda: check_lists(report, server, world, path, sizes)),
            ]
            with server:
                for part, run in steps:
                    started = time.perf_counter()
                    run()
                    took.append(f"{part} {time.perf_counter() - started:.1f} s")
        finally:
            server.stop()
            db.dispose()
        report.notes.append("wall time with setup and checks: " + ", ".join(took))
    report.notes.append(load_note(load_before, "client and server share them"))
    return report


# Seeding -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeedContent:
    id: str
    external_id: str
    creator_id: str
    creator_external_id: str
    slots: int
    accepts_pins: bool


@dataclass
class World:
    tenant_id: str
    api_key: str
    mchid: str
    now: datetime
    contents: list[SeedContent]
    # Cumulative Zipf weights by content rank (index = rank): pins, reads and purchases.
    cumulative: list[float]
    live: list[int]
    statuses: Counter[str]
    seconds: float = 0.0
    purchased_contents: set[int] = field(default_factory=set)

    @property
    def hot(self) -> int:
        """Ranks below this are the hottest 1 % of the content."""
        return max(1, len(self.contents) // 100)

    def ranks(self, rng: random.Random, k: int) -> list[int]:
        return rng.choices(range(len(self.contents)), cum_weights=self.cumulative, k=k)


def zipf_cumulative(n: int) -> list[float]:
    offset = max(2.0, n / 500)
    return list(itertools.accumulate(1.0 / (rank + offset) for rank in range(n)))


def seed(db: Database, path: Path, sizes: PinSizes) -> World:
    started = time.perf_counter()
    rng = random.Random(RANDOM_SEED)
    now = datetime.now(UTC).replace(microsecond=0)
    with db.session() as session:
        tenant, issued = tenancy.create_tenant(session, "bench pins", TenantKind.MERCHANT)
        mchid = payments.get_config(session, tenant.id).mchid
    creators = [_creator_row(tenant.id, i, now) for i in range(sizes.creators)]
    contents: list[SeedContent] = []
    content_rows: list[dict[str, Any]] = []
    for rank in range(sizes.contents):
        creator = creators[rng.randrange(len(creators))]
        row = _content_row(rng, tenant.id, rank, creator["id"], now)
        content_rows.append(row)
        contents.append(
            SeedContent(
                row["id"],
                row["external_id"],
                creator["id"],
                creator["external_id"],
                OVERRIDE_SLOTS if creator["policy"] else DEFAULT_SLOTS,
                row["pins_enabled"],
            )
        )
    world = World(
        tenant.id,
        issued.plaintext,
        mchid,
        now,
        contents,
        zipf_cumulative(sizes.contents),
        [0] * sizes.contents,
        Counter(),
    )
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA cache_size=-1000000")
        conn.execute(insert(Creator), creators)
        conn.execute(insert(Content), content_rows)
        conn.commit()
        in_transaction = 0
        for start in range(0, sizes.pins, ROWS_PER_EXECUTE):
            count = min(ROWS_PER_EXECUTE, sizes.pins - start)
            ranks = world.ranks(rng, count)
            rows = [_pin_row(rng, world, start + i, rank) for i, rank in enumerate(ranks)]
            conn.execute(insert(Pin), rows)
            in_transaction += count
            if in_transaction >= ROWS_PER_TRANSACTION:
                conn.commit()
                in_transaction = 0
        conn.commit()
        conn.exec_driver_sql("PRAGMA cache_size=-2000")
        conn.commit()
    with sqlite3.connect(path, isolation_level=None) as raw:
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw.close()
    world.seconds = time.perf_counter() - started
    return world


def _creator_row(tenant_id: str, i: int, now: datetime) -> dict[str, Any]:
    programmes = [["incentive"], ["commerce"], ["commerce", "incentive"]][i % 3]
    return {
        "id": f"crt_bench{i:06d}",
        "tenant_id": tenant_id,
        "external_id": f"creator-{i}",
        "name": f"Creator {i}",
        "programmes": programmes,
        # Every tenth creator shows more pins at the top than the tenant's default.
        "policy": {"slots": OVERRIDE_SLOTS} if i % 10 == 9 else {},
        "created_at": now,
        "updated_at": now,
    }


def _content_row(
    rng: random.Random, tenant_id: str, rank: int, creator_id: str, now: datetime
) -> dict[str, Any]:
    rated = rng.random() < 0.3
    return {
        "id": f"cnt_bench{rank:07d}",
        "tenant_id": tenant_id,
        "creator_id": creator_id,
        "external_id": f"content-{rank}",
        "kind": KINDS[rank % len(KINDS)],
        "title": f"Content {rank}",
        # 2 % switched off: their lists still read, but they take no new pins.
        "pins_enabled": rank % 50 != 49,
        "completion_rate": round(rng.uniform(0.5, 0.95), 3) if rated else None,
        "engagement_rate": round(rng.uniform(0.03, 0.15), 4) if rated else None,
        "pins_version": 1,
        "created_at": now,
        "updated_at": now,
    }


def _tier_seconds(amount_fen: int) -> int:
    """The default policy's display time for a timed pin of this amount."""
    for low, seconds in ((10_000, 18_000), (5_000, 7_200), (1_000, 1_800), (100, 300)):
        if amount_fen >= low:
            return seconds
    return 60


def _amount(rng: random.Random) -> int:
    if rng.random() < 0.7:
        return rng.choices(COMMON_AMOUNTS, weights=COMMON_WEIGHTS)[0]
    return int(10 ** rng.uniform(1, 4.5))


def _pin_row(rng: random.Random, world: World, p: int, rank: int) -> dict[str, Any]:
    content = world.contents[rank]
    now = world.now
    amount = _amount(rng)
    timed = rng.random() < 0.3
    display = _tier_seconds(amount) if timed else None
    activated: datetime | None
    expires: datetime | None = None
    ended: datetime | None = None
    reason, removed_by, refund_id = "", None, None
    r = rng.random()
    if display is None:
        activated = now - timedelta(seconds=rng.uniform(60, 60 * 86_400))
        if r < 0.88:
            status = "ACTIVE"
        elif r < 0.92:
            status, ended, reason = "REMOVED", now, "removed by the creator"
            removed_by = "creator"
        elif r < 0.94:
            status, ended, refund_id = "REFUNDED", now, f"ref_seed{p:08d}"
        elif r < 0.99:
            status, activated, ended = "CANCELLED", None, now
            reason = "the payment did not complete"
        elif r < 0.995:
            status, activated = "PENDING", None
        else:
            status = "IN_REVIEW"
    elif r < 0.15:
        # Run out but not yet swept: still ACTIVE in the table, hidden by every read.
        status = "ACTIVE"
        activated = now - timedelta(seconds=rng.uniform(display + 60, 30 * 86_400))
        expires = activated + timedelta(seconds=display)
    elif display >= 7_200 and r < 0.65:
        # Live for an hour or more after seeding, so the runs never see it end.
        status = "ACTIVE"
        expires = now + timedelta(seconds=rng.uniform(3_600, display - 60))
        activated = expires - timedelta(seconds=display)
    else:
        status = "EXPIRED"
        activated = now - timedelta(seconds=rng.uniform(display + 60, 60 * 86_400))
        expires = ended = activated + timedelta(seconds=display)
        reason = "display time over"
    world.statuses[status] += 1
    if status == "ACTIVE" and (expires is None or expires > now):
        world.live[rank] += 1
    platform_fen = amount * 30 // 100
    created = (activated or now) - timedelta(seconds=2)
    return {
        "id": f"pin_seed{p:09d}",
        "tenant_id": world.tenant_id,
        "content_id": content.id,
        "creator_id": content.creator_id,
        "buyer_id": f"viewer-{p % 199_999}",
        "openid": f"o-viewer-{p % 199_999}",
        "amount_fen": amount,
        "creator_fen": amount - platform_fen,
        "platform_fen": platform_fen,
        "message": "" if rng.random() < 0.6 else f"加油 #{p % 1000}",
        "mode": "timed" if timed else "lasting",
        "display_seconds": display,
        "status": status,
        "payment_order_id": f"pay_seed{p:09d}",
        "decision_id": f"rdc_seed{p:09d}",
        "region": rng.choice(REGIONS),
        "created_at": created,
        "activated_at": activated,
        "expires_at": expires,
        "ended_at": ended,
        "end_reason": reason,
        "removed_by": removed_by,
        "refund_id": refund_id,
    }


def _report_seed(report: Report, db: Database, world: World, sizes: PinSizes, path: Path) -> None:
    with db.read_session() as session:
        pins = session.scalar(select(func.count()).select_from(Pin))
        contents = session.scalar(select(func.count()).select_from(Content))
        creators = session.scalar(select(func.count()).select_from(Creator))
    report.check(
        "seed: rows in the database",
        (pins, contents, creators) == (sizes.pins, sizes.contents, sizes.creators),
        f"{pins:,} pins, {contents:,} contents, {creators:,} creators",
    )
    live = sorted(world.live)
    report.add(
        SEED_SECTION,
        "database: tenant, creators, contents, pins",
        f"1, {sizes.creators:,}, {sizes.contents:,}, {sizes.pins:,}",
    )
    active, showing = world.statuses["ACTIVE"], sum(world.live)
    report.add(
        SEED_SECTION,
        "pins ACTIVE, of them showing (not run out)",
        f"{active / sizes.pins:.0%}, {showing / max(1, active):.0%}",
    )
    report.notes.append(
        "seeded pins by status: "
        + ", ".join(f"{s} {n:,}" for s, n in world.statuses.most_common())
        + "; timed pins (30 %) showing now run out 1-5 h after seeding, the others have run "
        "out (EXPIRED, or still ACTIVE awaiting the expiry sweep, which reads must hide)"
    )
    report.add(
        SEED_SECTION,
        "live pins per content: median, p99, hottest",
        f"{statistics.median(live):,.0f}, {percentile(live, 99):,}, {live[-1]:,}",
    )
    report.add(
        SEED_SECTION,
        "seeding time, file size (not in any figure)",
        f"{world.seconds:.1f} s, {path.stat().st_size / 2**20:,.0f} MiB",
    )


# A lean HTTP/1.1 client ----------------------------------------------------------------------


class RawConnection:
    """One keep-alive connection speaking just enough HTTP/1.1 for the bench's requests: the
    request is prepared bytes and the response must carry a Content-Length."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()

    def exchange(self, request: bytes) -> tuple[int, bytes]:
        self._sock.sendall(request)
        buffer = self._buffer
        while (end := buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        head = bytes(buffer[:end]).lower()
        status = int(head[9:12])
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            if status in (204, 304):
                del buffer[: end + 4]
                return status, b""
            raise ConnectionError(f"HTTP {status} without a Content-Length")
        stop = head.find(b"\r\n", at + 2)
        length = int(head[at + 17 : stop if stop > 0 else len(head)])
        total = end + 4 + length
        while len(buffer) < total:
            self._fill()
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        return status, body

    def _fill(self) -> None:
        chunk = self._sock.recv(262_144)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def close(self) -> None:
        self._sock.close()


def http_request(
    method: str,
    path: str,
    port: int,
    headers: dict[str, str],
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class RawResult:
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    bodies: dict[int, bytes] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.latencies)


def raw_load(
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    *,
    limit: int | None = None,
    seconds: float | None = None,
    keep: bool = False,
) -> RawResult:
    """Closed loop: ``concurrency`` threads send ``requests[i % len]`` for i up to ``limit``
    (default: each once), stopping early after ``seconds`` if given."""
    limit = len(requests) if limit is None else limit
    next_index = itertools.count()
    gate = threading.Barrier(concurrency + 1)
    lock = threading.Lock()
    result = RawResult()

    def connect(mine: RawResult) -> RawConnection | None:
        try:
            return RawConnection(port)
        except OSError as exc:
            mine.errors.append(f"connect: {type(exc).__name__}: {exc}")
            return None

    def client_thread() -> None:
        mine = RawResult()
        connection = connect(mine)
        # Every thread reaches the gate, connected or not, so the caller never waits forever.
        gate.wait()
        try:
            deadline = time.perf_counter() + (seconds if seconds is not None else 1e9)
            while (
                connection is not None
                and (i := next(next_index)) < limit
                and time.perf_counter() < deadline
            ):
                started = time.perf_counter()
                try:
                    status, body = connection.exchange(requests[i % len(requests)])
                except OSError as exc:
                    mine.errors.append(f"{type(exc).__name__}: {exc}")
                    connection.close()
                    connection = connect(mine)
                    continue
                mine.latencies.append(time.perf_counter() - started)
                mine.indexes.append(i)
                mine.statuses[status] += 1
                if keep:
                    mine.bodies[i] = body
        finally:
            if connection is not None:
                connection.close()
            with lock:
                result.latencies += mine.latencies
                result.indexes += mine.indexes
                result.statuses.update(mine.statuses)
                result.errors += mine.errors
                result.bodies.update(mine.bodies)

    threads = [threading.Thread(target=client_thread, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    gate.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    result.seconds = time.perf_counter() - started
    return result


# (1) Reads -----------------------------------------------------------------------------------


def reads(report: Report, server: ServerProcess, world: World, sizes: PinSizes) -> None:
    rng = random.Random(RANDOM_SEED + 1)
    auth = {"Authorization": f"Bearer {world.api_key}"}
    ranks = world.ranks(rng, 100_000)
    requests = [
        http_request("GET", f"/v1/contents/{world.contents[r].external_id}/pins", server.port, auth)
        for r in ranks
    ]
    # Every content read once, in random order: each list is built from the pins table (the
    # cost after a change), and the timed reads below find the steady state of a server that
    # has served every content before.
    order = list(range(len(world.contents)))
    rng.shuffle(order)
    primed = raw_load(
        server.port,
        [
            http_request(
                "GET", f"/v1/contents/{world.contents[r].external_id}/pins", server.port, auth
            )
            for r in order
        ],
        READ_CONCURRENCY,
    )
    warmup = raw_load(server.port, requests, READ_CONCURRENCY, limit=sizes.read_warmup)
    # The timed reads start where the warm-up stopped in the same sequence.
    timed_requests = requests[sizes.read_warmup :] + requests[: sizes.read_warmup]
    timed_ranks = ranks[sizes.read_warmup :] + ranks[: sizes.read_warmup]
    cpu_before, client_before = server.cpu_seconds(), time.process_time()
    timed = raw_load(
        server.port,
        timed_requests,
        READ_CONCURRENCY,
        limit=sizes.read_max,
        seconds=sizes.read_seconds,
    )
    cpu_after, client_after = server.cpu_seconds(), time.process_time()

    latencies = sorted(timed.latencies)
    per_second = timed.count / timed.seconds if timed.seconds else 0.0
    p99 = percentile(latencies, 99)
    c = READ_CONCURRENCY
    report.add(
        READ_SECTION,
        f"pinned-list reads/s, HTTP, SQLite, c={c}",
        rate(timed.count, timed.seconds),
        f">= {TARGET_READS_PER_SECOND:,}/s",
        per_second >= TARGET_READS_PER_SECOND,
    )
    report.add(READ_SECTION, "latency p50", ms(percentile(latencies, 50)))
    report.add(
        READ_SECTION,
        "latency p99",
        ms(p99),
        f"<= {ms(TARGET_READ_P99_SECONDS)}",
        p99 <= TARGET_READ_P99_SECONDS,
    )
    report.add(READ_SECTION, "latency max", ms(latencies[-1] if latencies else float("nan")))
    hot: list[float] = []
    cold: list[float] = []
    for i, latency in zip(timed.indexes, timed.latencies, strict=True):
        (hot if timed_ranks[i % len(timed_ranks)] < world.hot else cold).append(latency)
    hot.sort()
    cold.sort()
    report.add(
        READ_SECTION,
        f"  p50 / p99, hottest 1% of contents ({len(hot) / max(1, timed.count):.0%} of reads)",
        f"{ms(percentile(hot, 50))} / {ms(percentile(hot, 99))}",
    )
    report.add(
        READ_SECTION,
        "  p50 / p99, the other 99%",
        f"{ms(percentile(cold, 50))} / {ms(percentile(cold, 99))}",
    )
    read_live = [world.live[timed_ranks[i % len(timed_ranks)]] for i in timed.indexes]
    report.add(
        READ_SECTION,
        "  live pins on the content read: mean, p99",
        f"{statistics.fmean(read_live) if read_live else 0:,.0f}, "
        f"{percentile(sorted(read_live), 99):,}",
    )
    if cpu_before is not None and cpu_after is not None and timed.count:
        server_cpu = (cpu_after - cpu_before) / timed.count
        report.add(READ_SECTION, "server CPU per read", ms(server_cpu))
        report.add(READ_SECTION, "  => one-core ceiling at that cost", f"{1 / server_cpu:,.0f}/s")
    if timed.count:
        client_cpu = (client_after - client_before) / timed.count
        report.add(READ_SECTION, f"client CPU per read ({c} raw-socket threads)", ms(client_cpu))
    report.add(
        READ_SECTION,
        "reads timed (+ untimed warm-up)",
        f"{timed.count:,} in {timed.seconds:.1f} s (+{warmup.count:,})",
    )
    cold_latencies = sorted(primed.latencies)
    report.add(
        READ_SECTION,
        "untimed first pass, every content once: reads/s",
        rate(primed.count, primed.seconds),
    )
    report.add(
        READ_SECTION,
        "  p50 / p99 / max (each list built, not cached)",
        f"{ms(percentile(cold_latencies, 50))} / {ms(percentile(cold_latencies, 99))} / "
        f"{ms(cold_latencies[-1] if cold_latencies else float('nan'))}",
    )
    report.add(READ_SECTION, "server: a child process, 1 worker", COMMAND)
    report.add(READ_SECTION, "  HTTP stack", server_stack(python_is_ours=True))
    _check_raw(report, "(1) every first-pass read answered 200", primed, len(world.contents), 200)
    _check_raw(report, "(1) every warm-up read answered 200", warmup, sizes.read_warmup, 200)
    _check_raw(report, "(1) every timed read answered 200", timed, timed.count, 200)


def _check_raw(report: Report, name: str, result: RawResult, expected: int, status: int) -> None:
    ok = dict(result.statuses) == {status: expected} and not result.errors and expected > 0
    detail = f"{expected:,} x {status}" if ok else f"statuses {dict(result.statuses)}"
    if result.errors:
        detail += f"; {len(result.errors)} errors, first: {result.errors[0]}"
    report.check(name, ok, detail)


# (2) Purchases -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bought:
    pin_id: str
    out_trade_no: str
    content_rank: int
    creator_external_id: str
    amount_fen: int
    creator_fen: int
    platform_fen: int


def purchases(
    report: Report, db: Database, server: ServerProcess, world: World, sizes: PinSizes
) -> None:
    rng = random.Random(RANDOM_SEED + 2)
    n = sizes.purchases
    auth = {"Authorization": f"Bearer {world.api_key}"}
    viewers = [f"buyer-{i}" for i in range(n)]
    bindings = raw_load(
        server.port,
        [
            http_request(
                "PUT",
                f"/v1/bindings/{viewer}",
                server.port,
                {**auth, "Content-Type": "application/json"},
                json.dumps({"openid": f"o-{viewer}", "real_name_verified": True}).encode(),
            )
            for viewer in viewers
        ],
        PURCHASE_CONCURRENCY,
    )
    report.add(
        BUY_SECTION,
        f"setup: viewers bound/s (PUT /v1/bindings, c={PURCHASE_CONCURRENCY})",
        rate(bindings.count, bindings.seconds),
    )
    _check_raw(report, "(2) every binding answered 200", bindings, n, 200)

    eligible = [r for r in world.ranks(rng, 4 * n) if world.contents[r].accepts_pins][:n]
    calls = [
        Call(
            "/v1/pins",
            {**auth, "Idempotency-Key": f"bench-pin-{i}", "Content-Type": "application/json"},
            json.dumps(
                {
                    "content_id": world.contents[rank].external_id,
                    "buyer_id": viewer,
                    "amount_fen": _amount(rng),
                    "message": f"bench {i}" if i % 2 else "",
                    "device_id": f"device-{viewer}",
                }
            ).encode(),
        )
        for i, (viewer, rank) in enumerate(zip(viewers, eligible, strict=False))
    ]
    placed = run_load(server.base_url, calls, PURCHASE_CONCURRENCY, keep_json=True)
    report.add(
        BUY_SECTION,
        f"setup: purchases placed/s (POST /v1/pins, c={PURCHASE_CONCURRENCY})",
        rate(placed.count, placed.seconds),
    )
    _check_load(report, "(2) every purchase answered 201", placed, n, 201)
    bought: list[Bought] = []
    for i, body in sorted(placed.bodies, key=lambda item: int(item[0])):
        if isinstance(body, dict) and "pin" in body:
            pin = body["pin"]
            bought.append(
                Bought(
                    str(pin["id"]),
                    str(body["payment"]["out_trade_no"]),
                    eligible[i],
                    str(pin["creator_id"]),
                    int(pin["amount_fen"]),
                    int(pin["creator_fen"]),
                    int(pin["platform_fen"]),
                )
            )
    world.purchased_contents.update(b.content_rank for b in bought)
    if not bought:
        return

    notifications = _pay_and_sign(db, world, bought)
    w = min(sizes.settle_warmup, len(notifications) - 1)
    warmup = run_load(server.base_url, notifications[:w], PURCHASE_CONCURRENCY)
    cpu_before = server.cpu_seconds()
    timed = run_load(server.base_url, notifications[w:], PURCHASE_CONCURRENCY)
    cpu_after = server.cpu_seconds()
    replayed = run_load(server.base_url, notifications[: sizes.replays], PURCHASE_CONCURRENCY)

    latencies = timed.sorted_latencies()
    per_second = timed.count / timed.seconds if timed.seconds else 0.0
    report.add(
        BUY_SECTION,
        f"purchases settled/s (notification -> pin ACTIVE), c={PURCHASE_CONCURRENCY}",
        rate(timed.count, timed.seconds),
        f">= {TARGET_SETTLED_PER_SECOND:,}/s",
        per_second >= TARGET_SETTLED_PER_SECOND,
    )
    report.add(BUY_SECTION, "latency p50", ms(percentile(latencies, 50)))
    report.add(BUY_SECTION, "latency p99", ms(percentile(latencies, 99)))
    report.add(BUY_SECTION, "latency max", ms(latencies[-1] if latencies else float("nan")))
    if cpu_before is not None and cpu_after is not None and timed.count:
        server_cpu = (cpu_after - cpu_before) / timed.count
        report.add(BUY_SECTION, "server CPU per settlement", ms(server_cpu))
        report.add(BUY_SECTION, "  => one-core ceiling at that cost", f"{1 / server_cpu:,.0f}/s")
    report.add(
        BUY_SECTION,
        "purchases timed (+ untimed warm-up, replays)",
        f"{timed.count:,} (+{warmup.count}, +{replayed.count})",
    )
    _check_load(report, "(2) every warm-up notification answered 204", warmup, w, 204)
    _check_load(report, "(2) every timed notification answered 204", timed, len(bought) - w, 204)
    _check_load(
        report, "(2) every replayed notification answered 204", replayed, sizes.replays, 204
    )
    _check_settled(report, db, world, bought)


def _check_load(report: Report, name: str, result: LoadResult, expected: int, status: int) -> None:
    ok = result.statuses == {status: expected} and not result.errors and expected > 0
    detail = f"{expected:,} x {status}" if ok else f"statuses {result.statuses}"
    if result.errors:
        detail += f"; {len(result.errors)} errors, first: {result.errors[0]}"
    report.check(name, ok, detail)


def _pay_and_sign(db: Database, world: World, bought: list[Bought]) -> list[Call]:
    """The buyer pays every order in the sandbox; each payment queues the signed, encrypted
    notification, taken here and signed for delivery exactly as the sandbox sends it."""
    with db.session() as session:
        for b in bought:
            sandbox.pay(session, world.mchid, b.out_trade_no)
    path = f"/v1/payments/notify/{world.tenant_id}"
    calls: list[Call] = []
    with db.session() as session:
        queued = sandbox.list_notifications(session, world.mchid, limit=len(bought))
        for notification in reversed(queued):
            notify_url, body, headers = sandbox.signed_delivery(session, notification.id)
            assert notify_url.endswith(path), notify_url
            calls.append(Call(path, headers, body.encode()))
    return calls


def _check_settled(report: Report, db: Database, world: World, bought: list[Bought]) -> None:
    ids = {b.pin_id for b in bought}
    with db.read_session() as session:
        statuses = Counter(
            status
            for _, status in session.execute(
                select(Pin.id, Pin.status).where(Pin.id.in_(ids))
            ).all()
        )
        activations = Counter(
            str(payload.get("pin_id"))
            for (payload,) in session.execute(
                select(PinNotice.payload).where(
                    PinNotice.tenant_id == world.tenant_id, PinNotice.kind == "pin.activated"
                )
            ).all()
        )
        orders = dict(
            session.execute(
                select(PaymentOrder.status, func.count())
                .where(PaymentOrder.tenant_id == world.tenant_id)
                .group_by(PaymentOrder.status)
            ).all()
        )
        recorded = session.scalar(
            select(func.count()).where(ProviderNotification.tenant_id == world.tenant_id)
        )

        def balance(owner: str) -> int:
            return ledger.balance(session, world.tenant_id, owner, Asset.CNY).balance

        sales = balance("pins:sales")
        platform_balance = balance("platform:pins")
        shares: dict[str, int] = defaultdict(int)
        for b in bought:
            shares[b.creator_external_id] += b.creator_fen
        creators_ok = all(balance(f"creator:{c}") == fen for c, fen in shares.items())
    report.check(
        "(2) every purchased pin is ACTIVE",
        statuses == Counter({"ACTIVE": len(ids)}),
        f"{dict(statuses)}",
    )
    report.check(
        "(2) each went live exactly once (one pin.activated notice each)",
        set(activations) == ids and set(activations.values()) == {1},
        f"{len(activations):,} pins with notices, most for one pin: "
        f"{max(activations.values(), default=0)}",
    )
    report.check(
        "(2) every order SUCCESS, each notification recorded once",
        orders == {"SUCCESS": len(bought)} and recorded == len(bought),
        f"orders {orders}, {recorded} notifications recorded",
    )
    platform_expected = sum(b.platform_fen for b in bought)
    report.check(
        "(2) ledger: pins:sales 0, creators and platform hold their shares",
        sales == 0 and platform_balance == platform_expected and creators_ok,
        f"pins:sales {sales}, platform:pins {platform_balance} (expected {platform_expected}), "
        f"{len(shares)} creators {'match' if creators_ok else 'DIFFER'}",
    )


# The pinned lists, against an independent computation ---------------------------------------


def check_lists(
    report: Report, server: ServerProcess, world: World, path: Path, sizes: PinSizes
) -> None:
    rng = random.Random(RANDOM_SEED + 3)
    hottest = list(range(min(world.hot, 20)))
    purchased = sorted(world.purchased_contents)[: sizes.samples // 3]
    others = rng.sample(range(len(world.contents)), min(len(world.contents), sizes.samples))
    sample = list(dict.fromkeys(hottest + purchased + others))[: sizes.samples]
    mismatches: list[str] = []
    entries = 0
    with (
        httpx.Client(base_url=server.base_url, timeout=30) as client,
        _read_only(path) as raw,
    ):
        for rank in sample:
            content = world.contents[rank]
            response = client.get(
                f"/v1/contents/{content.external_id}/pins",
                headers={"Authorization": f"Bearer {world.api_key}"},
            )
            now = datetime.now(UTC).replace(tzinfo=None)
            expected = _expected_list(raw, content.id, now)
            if response.status_code != 200:
                mismatches.append(f"{content.external_id}: HTTP {response.status_code}")
                continue
            listed = response.json()
            got = (
                [e["pin_id"] for e in listed["pinned"]],
                [e["pin_id"] for e in listed["queued"]],
                listed["slots"],
                listed["accepts_pins"],
            )
            want = (
                expected[: content.slots],
                expected[content.slots : content.slots + QUEUE_LIMIT],
                content.slots,
                content.accepts_pins,
            )
            entries += len(got[0]) + len(got[1])
            if got != want:
                mismatches.append(content.external_id)
    report.check(
        "pinned lists equal the independent computation",
        not mismatches and bool(sample),
        f"{len(sample)} contents ({len(hottest)} hottest, "
        f"{len([r for r in sample if r in world.purchased_contents])} with purchases), "
        f"{entries:,} entries"
        + (f"; {len(mismatches)} differ, first: {mismatches[0]}" if mismatches else ""),
    )


class _read_only:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        self.conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _expected_list(raw: sqlite3.Connection, content_id: str, now: datetime) -> list[str]:
    """The content's live pins in display order: amount desc, then activated_at, then id."""
    rows: Iterator[tuple[str, int, str, str | None]] = raw.execute(
        "SELECT id, amount_fen, activated_at, expires_at FROM pins "
        "WHERE content_id = ? AND status = 'ACTIVE'",
        (content_id,),
    )
    live = [
        (-amount, _naive_utc(activated), pin_id)
        for pin_id, amount, activated, expires in rows
        if expires is None or _naive_utc(expires) > now
    ]
    return [pin_id for _, _, pin_id in sorted(live)]


def _naive_utc(stored: str) -> datetime:
    value = datetime.fromisoformat(stored)
    return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
