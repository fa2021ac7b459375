from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from zanloop.kit.money import Asset
from zanloop.ledger.domain import MAX_AMOUNT, MAX_HOLD_ID

# PostgreSQL text cannot hold NUL characters; refuse them as invalid input, not a 500.
NO_NUL = r"^[^\x00]*$"
OWNER = Field(
    min_length=1,
    max_length=200,
    pattern=NO_NUL,
    description="Who owns the account, e.g. `user:42`.",
)


class LegIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str = OWNER
    amount: int = Field(
        ge=-MAX_AMOUNT,
        le=MAX_AMOUNT,
        description="Signed minor units: negative leaves the account, positive arrives.",
    )


class TransferCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "transfer_id": "bonus-2026-11-26-42",
                    "asset": "POINTS",
                    "legs": [
                        {"owner": "merchant", "amount": -50},
                        {"owner": "user:42", "amount": 50},
                    ],
                    "description": "welcome bonus",
                }
            ]
        },
    )

    transfer_id: str = Field(
        min_length=1,
        max_length=200,
        pattern=NO_NUL,
        description="Your id; a transfer id posts once.",
    )
    asset: Asset
    legs: list[LegIn] = Field(min_length=2, max_length=32)
    description: str = Field(default="", max_length=500, pattern=NO_NUL)
    metadata: dict[str, Any] = Field(default_factory=dict)


class TransferBatchCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transfers: list[TransferCreate] = Field(min_length=1, max_length=1000)


class Leg(BaseModel):
    owner: str
    amount: int


class Transfer(BaseModel):
    id: str
    transfer_id: str
    asset: Asset
    amount: int
    reversed_amount: int
    kind: str
    reverses_id: str | None = Field(description="For a reversal: the transfer_id it reverses.")
    description: str
    metadata: dict[str, Any]
    legs: list[Leg]
    created_at: datetime
    replayed: bool = Field(
        default=False, description="True when this transfer id had already posted."
    )


class ReversalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reversal_id: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    amount: int | None = Field(
        default=None,
        gt=0,
        le=MAX_AMOUNT,
        description="Part of a two-party transfer; all if absent.",
    )
    description: str = Field(default="", max_length=500, pattern=NO_NUL)


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: str = OWNER
    asset: Asset
    overdraft_allowed: bool = Field(
        default=False, description="Only for counterparty accounts outside your books."
    )


class Balance(BaseModel):
    owner: str
    asset: Asset
    balance: int = Field(description="Sum of all entries.")
    pending_out: int = Field(description="Held for pending outgoing holds.")
    pending_in: int
    available: int = Field(description="balance − pending_out")


class Account(Balance):
    id: str
    overdraft_allowed: bool
    created_at: datetime


class Entry(BaseModel):
    id: int
    transfer_id: str
    amount: int
    balance_after: int
    created_at: datetime


class HoldCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hold_id: str = Field(
        min_length=1,
        max_length=MAX_HOLD_ID,
        pattern=NO_NUL,
        description="Your id; posting the hold makes the transfer `hold:<hold_id>`.",
    )
    asset: Asset
    from_owner: str = OWNER
    to_owner: str = OWNER
    amount: int = Field(gt=0, le=MAX_AMOUNT)
    expires_at: AwareDatetime | None = None
    description: str = Field(default="", max_length=500, pattern=NO_NUL)


class HoldPost(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(
        default=None, gt=0, le=MAX_AMOUNT, description="Post less than held; the rest is released."
    )


class Hold(BaseModel):
    hold_id: str
    asset: Asset
    from_owner: str
    to_owner: str
    amount: int
    posted_amount: int
    status: str = Field(description="PENDING, POSTED or VOIDED.")
    expires_at: datetime | None
    created_at: datetime
    resolved_at: datetime | None
