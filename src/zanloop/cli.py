"""The zanloop command line: serve, worker, migrate, tenants, sandbox, fraud, demo, bench."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from zanloop.config import get_settings
from zanloop.fraud.cli import fraud_app
from zanloop.tenancy.domain import Scope, TenantKind

if TYPE_CHECKING:
    from zanloop.db import Database

app = typer.Typer(help="zanloop: payment-backed engagement engine.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants and their API keys.", no_args_is_help=True)
sandbox_app = typer.Typer(
    help="Act as the buyer in the built-in WeChat Pay sandbox.", no_args_is_help=True
)
app.add_typer(tenants_app, name="tenants")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(fraud_app, name="fraud")


@contextmanager
def _database() -> Iterator[Database]:
    """A database for one command, disposed afterwards so no connection outlives it."""
    from zanloop.db import Database

    db = Database(get_settings().database_url)
    try:
        yield db
    finally:
        db.dispose()


def _setup() -> None:
    from zanloop.ops.logging import configure

    settings = get_settings()
    configure(settings.log_level, settings.log_json)


@app.command()
def migrate(revision: str = "head") -> None:
    """Create or upgrade the schema of ZANLOOP_DATABASE_URL."""
    from zanloop import migrate as migrations

    migrations.upgrade(get_settings().database_url, revision)
    typer.echo(f"database at {revision}")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default: ZANLOOP_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: ZANLOOP_PORT")] = None,
    worker: Annotated[bool, typer.Option(help="Run the job worker in this process")] = True,
) -> None:
    """Migrate, create the demo tenant on an empty database, and serve the API."""
    import uvicorn

    from zanloop import bootstrap
    from zanloop import migrate as migrations
    from zanloop.app import create_app
    from zanloop.db import Database

    _setup()
    settings = get_settings()
    if host:
        settings.host = host
    if port:
        settings.port = port
    migrations.upgrade(settings.database_url)
    db = Database(settings.database_url)
    demo = bootstrap.ensure_demo_tenant(db, settings)
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        "",
        f"zanloop is starting on {base}",
        f"  API docs    {base}/docs",
        f"  health      {base}/healthz",
        f"  metrics     {base}/metrics",
        f"  database    {db.url}",
        f"  provider    {settings.payment_provider} (built-in WeChat Pay v3 sandbox)"
        if settings.payment_provider == "sandbox"
        else f"  provider    {settings.payment_provider}",
    ]
    if demo is not None:
        lines += [
            f"  demo tenant {demo.tenant_id}",
            f"  API key     {demo.api_key}   (shown once; also saved to {demo.key_file})",
        ]
    elif (settings.data_dir / bootstrap.DEMO_KEY_FILE).exists():
        lines.append(f"  API key     in {settings.data_dir / bootstrap.DEMO_KEY_FILE}")
    typer.echo("\n".join(lines) + "\n", err=True)
    app_ = create_app(settings, db=db, run_worker=worker)
    uvicorn.run(app_, host=settings.host, port=settings.port, log_config=None, access_log=False)


@app.command("worker")
def run_worker() -> None:
    """Run a job worker (any number of them may run beside the API processes)."""
    from zanloop import events
    from zanloop.db import Database
    from zanloop.jobs.worker import Worker
    from zanloop.risk import service as risk

    _setup()
    settings = get_settings()
    events.wire()
    # Jobs that decide on actions count against the same limits as the API processes.
    risk.configure(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    Worker(Database(settings.database_url), settings).run_forever(stop)


@tenants_app.command("create")
def tenants_create(
    name: str,
    kind: Annotated[TenantKind, typer.Option()] = TenantKind.MERCHANT,
    parent: Annotated[str | None, typer.Option(help="Owning platform or service provider")] = None,
) -> None:
    """Create a tenant (with a sandbox merchant) and print its admin API key once."""
    from zanloop import events
    from zanloop.tenancy import service

    events.wire()
    with _database() as db, db.session() as session:
        tenant, issued = service.create_tenant(session, name, kind, parent)
    typer.echo(f"tenant  {tenant.id}\napi key {issued.plaintext}   (shown once)")


@tenants_app.command("list")
def tenants_list() -> None:
    from zanloop.tenancy import service

    with _database() as db, db.read_session() as session:
        for tenant in service.list_tenants(session):
            typer.echo(f"{tenant.id}  {tenant.kind:<16} {tenant.name}")


@tenants_app.command("add-key")
def tenants_add_key(
    tenant_id: str,
    scope: Annotated[list[Scope], typer.Option(help="Repeat for several scopes")],
    name: str = "cli key",
    creator: Annotated[
        str | None, typer.Option(help="For a creator key: the creator it acts for")
    ] = None,
) -> None:
    """Issue another API key for a tenant and print it once."""
    from zanloop.tenancy import service

    with _database() as db, db.session() as session:
        service.get_tenant(session, tenant_id)
        issued = service.create_key(session, tenant_id, name, scope, creator)
    typer.echo(issued.plaintext)


def _sandbox_action(out_trade_no: str, action: str) -> None:
    from sqlalchemy import select

    from zanloop import events
    from zanloop.jobs import service as jobs
    from zanloop.sandbox import service as sandbox
    from zanloop.sandbox.tables import SandboxOrder

    events.wire()
    jobs.load_handlers()
    with _database() as db, db.session() as session:
        mchids = list(
            session.scalars(
                select(SandboxOrder.mchid).where(SandboxOrder.out_trade_no == out_trade_no)
            )
        )
        if len(mchids) != 1:
            raise typer.BadParameter(
                f"{len(mchids)} sandbox orders have out_trade_no {out_trade_no}"
            )
        resource = (
            sandbox.pay(session, mchids[0], out_trade_no)
            if action == "pay"
            else sandbox.fail(session, mchids[0], out_trade_no)
        )
    typer.echo(f"{out_trade_no}: {resource['trade_state']}")
    if action == "pay":
        typer.echo(
            "a signed TRANSACTION.SUCCESS notification is queued; the running worker delivers it"
        )


@sandbox_app.command("pay")
def sandbox_pay(out_trade_no: str) -> None:
    """The buyer pays an order in the sandbox."""
    _sandbox_action(out_trade_no, "pay")


@sandbox_app.command("fail")
def sandbox_fail(out_trade_no: str) -> None:
    """The buyer's payment fails in the sandbox."""
    _sandbox_action(out_trade_no, "fail")


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="Payment orders to drive through the API")] = 40,
    url: Annotated[str | None, typer.Option(help="A running zanloop; default: start one")] = None,
) -> None:
    """Run a coffee shop's day, a platform's paid pinned likes, a coffee chain's
    pay-then-like campaign and a month of its points programme through the real HTTP API and
    sandbox, and check what the API reports."""
    from zanloop.demo import run

    run(orders=orders, url=url)


@app.command()
def bench(
    what: Annotated[str, typer.Argument(help="core (default), risk, pins, ...")] = "core",
    quick: Annotated[bool, typer.Option(help="Small sizes, for a smoke run")] = False,
) -> None:
    """Print throughput and latency figures (see benchmarks/README.md)."""
    from zanloop.bench import run_bench

    run_bench(what, quick=quick)


if __name__ == "__main__":
    app()
