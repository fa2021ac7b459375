"""First start on an empty database: a demo tenant whose key is printed and kept in a file.

The file exists so that the README's curl examples work as written on the embedded default;
it holds a key for a sandbox-only tenant. Production sets ZANLOOP_BOOTSTRAP_DEMO_TENANT=false.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from zanloop.config import Settings
from zanloop.db import Database
from zanloop.tenancy import service as tenancy
from zanloop.tenancy.domain import TenantKind

DEMO_KEY_FILE = "demo-api-key"


@dataclass(frozen=True)
class Bootstrapped:
    tenant_id: str
    api_key: str | None
    key_file: Path


def ensure_demo_tenant(db: Database, settings: Settings) -> Bootstrapped | None:
    if not settings.bootstrap_demo_tenant:
        return None
    key_file = settings.data_dir / DEMO_KEY_FILE
    with db.session() as session:
        if tenancy.has_any_tenant(session):
            return None
        tenant, issued = tenancy.create_tenant(session, "Demo merchant", TenantKind.MERCHANT)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(issued.plaintext + "\n")
    return Bootstrapped(tenant.id, issued.plaintext, key_file)
