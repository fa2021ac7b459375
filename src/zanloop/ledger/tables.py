from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from zanloop.db import Base, BigIntPK
from zanloop.kit.clock import utcnow


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "owner", "asset"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    owner: Mapped[str] = mapped_column(String(200))
    asset: Mapped[str] = mapped_column(String(10))
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_out: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_in: Mapped[int] = mapped_column(BigInteger, default=0)
    overdraft_allowed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerTransfer(Base):
    __tablename__ = "ledger_transfers"
    __table_args__ = (UniqueConstraint("tenant_id", "transfer_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    transfer_id: Mapped[str] = mapped_column(String(200))
    asset: Mapped[str] = mapped_column(String(10))
    # Sum of the positive legs: what the transfer moved.
    amount: Mapped[int] = mapped_column(BigInteger)
    reversed_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    kind: Mapped[str] = mapped_column(String(20))
    # The primary key (``id``) of the transfer this one reverses.
    reverses_id: Mapped[str | None] = mapped_column(String(40), default=None)
    fingerprint: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account_id_id", "account_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(String(40))
    transfer_pk: Mapped[str] = mapped_column(ForeignKey("ledger_transfers.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LedgerHold(Base):
    __tablename__ = "ledger_holds"
    __table_args__ = (UniqueConstraint("tenant_id", "hold_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    hold_id: Mapped[str] = mapped_column(String(200))
    asset: Mapped[str] = mapped_column(String(10))
    from_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    to_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    posted_amount: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(10))
    fingerprint: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(500), default="")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    transfer_pk: Mapped[str | None] = mapped_column(String(40), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
