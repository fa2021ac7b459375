"""Profile the two SQLite paths that ``zanloop bench`` measures, to see where the time goes.

    .venv/bin/python benchmarks/profile_sqlite_paths.py ledger        # (b) post_many batches
    .venv/bin/python benchmarks/profile_sqlite_paths.py notify        # (a) in-process handler
    .venv/bin/python benchmarks/profile_sqlite_paths.py notify-http   # (a) the live server

``ledger`` and ``notify`` run in this process under cProfile and list the SQL each unit of work
sends, marking statements SQLAlchemy could not cache (compiled anew on every call).
``notify-http`` runs bench (a) against a server whose every thread (event loop and the
threadpool that runs the handler) is profiled; the merged profile shows how much of the
handler's wall time is spent waiting for the SQLite write lock in ``BEGIN IMMEDIATE``.

cProfile inflates many small Python calls, so read proportions, not absolute times. For a
sampling profile use pyinstrument from a throwaway virtualenv, never the project's.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import event

from zanloop import migrate
from zanloop.bench import ledger as ledger_bench
from zanloop.bench import notify as notify_bench
from zanloop.bench.report import Report
from zanloop.config import Settings
from zanloop.db import Database
from zanloop.ledger import service as ledger
from zanloop.ledger.domain import TransferRequest

# Installed into the profiled server through PYTHONPATH: one cProfile per thread, merged and
# written at exit (uvicorn exits cleanly on SIGINT).
PROFILE_HOOK = """
import atexit, cProfile, os, pstats, sys, threading

_profiles = []
_lock = threading.Lock()


def _start(*_args):
    sys.setprofile(None)
    profile = cProfile.Profile()
    with _lock:
        _profiles.append(profile)
    profile.enable()


threading.setprofile(_start)
_main = cProfile.Profile()
_profiles.append(_main)
_main.enable()


def _dump():
    _main.disable()
    stats = None
    for profile in list(_profiles):
        try:
            profile.create_stats()
        except Exception:
            continue
        if stats is None:
            stats = pstats.Stats(profile)
        else:
            stats.add(profile)
    if stats is not None:
        stats.dump_stats(os.environ["ZANLOOP_PROFILE_OUT"])


atexit.register(_dump)
"""


CACHE_VERDICTS = (
    ("cached", "cached"),
    ("generated", "compiled"),
    ("no key", "NO-CACHE"),
    ("raw sql", "raw"),
)


def record_sql(db: Database) -> list[str]:
    """Every statement sent, with SQLAlchemy's cache verdict (``no key``: compiled anew)."""
    sent: list[str] = []

    @event.listens_for(db.engine, "before_cursor_execute")
    def _sent(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        stats = getattr(context, "_get_cache_stats", None)
        verdict = str(stats()) if callable(stats) else ""
        verdict = next(
            (label for key, label in CACHE_VERDICTS if verdict.startswith(key)), verdict[:8]
        )
        rows = f"  [executemany x{len(params)}]" if many else ""
        sent.append(f"  {verdict:<9} {' '.join(statement.split())[:110]}{rows}")

    return sent


def profiled(work: Callable[[], None], top: int) -> None:
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    work()
    profile.disable()
    print(f"\nprofiled wall time {time.perf_counter() - started:.2f} s\n")
    stats = pstats.Stats(profile)
    stats.sort_stats("cumulative").print_stats("zanloop", top)
    stats.sort_stats("tottime").print_stats(top)


def profile_ledger(args: argparse.Namespace) -> None:
    sizes = ledger_bench.LedgerSizes(args.accounts, args.batches, args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'ledger.db'}"
        migrate.upgrade(url)
        db = Database(url)
        load = ledger_bench.workload(sizes)
        tenant_id = ledger_bench.seed(db, load)
        sent = record_sql(db)

        def post(batches: list[list[TransferRequest]]) -> None:
            for batch in batches:
                with db.session() as session:
                    ledger.post_many(session, tenant_id, batch)

        post(load.batches[:1])
        sent.clear()
        post(load.batches[1:2])
        print(f"SQL of one {sizes.batch_size:,}-transfer batch (after a warm-up batch):")
        print("\n".join(sent))
        profiled(lambda: post(load.batches[2:]), args.top)
        db.dispose()


def profile_notify(args: argparse.Namespace) -> None:
    from zanloop.payments import service as payments
    from zanloop.payments.endpoints import _handle_notification
    from zanloop.payments.schemas import PaymentOrderCreate
    from zanloop.sandbox import service as sandbox
    from zanloop.tenancy import service as tenancy
    from zanloop.tenancy.domain import TenantKind

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'notify.db'}"
        migrate.upgrade(url)
        db = Database(url)
        settings = Settings(database_url=url, _env_file=None)
        with db.session() as session:
            tenant, _ = tenancy.create_tenant(session, "profile", TenantKind.MERCHANT)
            mchid = payments.get_config(session, tenant.id).mchid
            for i in range(args.notifications + 2):
                order = PaymentOrderCreate(
                    amount_fen=100 + i,
                    description="p",
                    payer_openid="o",
                    out_trade_no=f"prof{i:08d}",
                )
                created = payments.create_order(session, settings, tenant.id, order)
                sandbox.pay(session, mchid, created.order.out_trade_no)
        calls = []
        with db.session() as session:
            for queued in reversed(sandbox.list_notifications(session, mchid, limit=10**6)):
                _, body, headers = sandbox.signed_delivery(session, queued.id)
                calls.append(({k.lower(): v for k, v in headers.items()}, body.encode()))
        _handle_notification(db, settings, tenant.id, *calls[0])
        sent = record_sql(db)
        _handle_notification(db, settings, tenant.id, *calls[1])
        print("SQL of one notification (after a warm-up one):")
        print("\n".join(sent))

        def work() -> None:
            for headers, body in calls[2:]:
                _handle_notification(db, settings, tenant.id, headers, body)

        started = time.process_time()
        profiled(work, args.top)
        each = (time.process_time() - started) / len(calls[2:])
        print(f"(CPU under the profiler: {each * 1e3:.2f} ms per notification)")
        db.dispose()


def profile_notify_http(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "hook").mkdir()
        (workdir / "hook" / "sitecustomize.py").write_text(textwrap.dedent(PROFILE_HOOK))
        out = workdir / "server.prof"
        report = Report("bench (a) with the server under cProfile (figures are slowed by it)")
        sizes = notify_bench.NotifySizes(
            min_orders=args.notifications,
            max_orders=args.notifications,
            setup_seconds=0,
            warmup=50,
            replays=0,
        )
        env = {"PYTHONPATH": str(workdir / "hook"), "ZANLOOP_PROFILE_OUT": str(out)}
        notify_bench.run(report, workdir, sizes, extra_env=env)
        print(report.render())
        stats = pstats.Stats(str(out))
        print("\nThe notification handler, all threads (cumulative):")
        stats.sort_stats("cumulative").print_stats(
            r"payments|ledger/|_on_begin|webhooks/service", args.top
        )
        print("Event loop and HTTP stack (own time):")
        stats.sort_stats("tottime").print_stats(r"uvicorn|h11|starlette|fastapi|asyncio", args.top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    ledger = sub.add_parser("ledger", help="(b) post_many batches, in process")
    ledger.add_argument("--accounts", type=int, default=300)
    ledger.add_argument("--batches", type=int, default=10)
    ledger.add_argument("--batch-size", type=int, default=1_000)
    for name, help_ in (
        ("notify", "(a) the notification handler, in process"),
        ("notify-http", "(a) through a live, profiled server"),
    ):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--notifications", type=int, default=300)
    for p in sub.choices.values():
        p.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    {"ledger": profile_ledger, "notify": profile_notify, "notify-http": profile_notify_http}[
        args.what
    ](args)


if __name__ == "__main__":
    main()
