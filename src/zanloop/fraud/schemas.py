from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from zanloop.fraud.domain import Kind
from zanloop.ledger.schemas import NO_NUL


class ActionName(StrEnum):
    HOLD = "hold"
    BLOCK = "block"
    REVOKE = "revoke"


class ScanCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "since": "2026-11-01T00:00:00+08:00",
                    "until": "2026-11-26T00:00:00+08:00",
                    "kinds": ["dense_block", "lockstep"],
                }
            ]
        },
    )
    since: AwareDatetime
    until: AwareDatetime
    kinds: list[Kind] = Field(
        default_factory=lambda: list(Kind), min_length=1, description="Detectors to run."
    )
    burst_seconds: int = Field(
        default=3600, ge=60, le=86_400, description="The longest burst lockstep looks for."
    )
    max_blocks: int = Field(default=5, ge=1, le=50, description="Dense blocks to report.")
    min_users: int = Field(default=10, ge=2, le=10_000, description="Smallest group reported.")


class Scan(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    source: str
    since: datetime
    until: datetime
    status: str
    params: dict[str, Any]
    stats: dict[str, Any]
    requested_by: str
    started_at: datetime
    finished_at: datetime | None


class Member(BaseModel):
    id: str
    hits: int = Field(description="Interactions with the other side of the group.")
    expected: float = Field(description="What the member's activity alone would explain.")


class Finding(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    scan_id: str
    kind: Kind
    score: float = Field(
        description="Nats of evidence against honest behaviour (dense_block, lockstep), or "
        "accounts per shared device or address."
    )
    users: int
    targets: int
    window_start: datetime | None
    window_end: datetime | None
    evidence: dict[str, Any]
    status: str
    created_at: datetime


class FindingDetail(Finding):
    members: list[Member]
    target_members: list[Member]


class ActionCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"action": "hold", "note": "ring on store-7"}]},
    )
    action: ActionName
    user_ids: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="Some of the finding's accounts; default: all of them.",
    )
    note: str = Field(default="", max_length=1000, pattern=NO_NUL)
    expires_at: AwareDatetime | None = Field(
        default=None, description="When a hold or block ends (default: 30 days)."
    )


class ActionResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(default="", max_length=1000, pattern=NO_NUL)


class Action(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    finding_id: str
    action: ActionName
    status: str
    user_ids: list[str]
    note: str
    expires_at: datetime | None
    result: dict[str, Any]
    requested_by: str
    resolved_by: str | None
    resolution_note: str
    created_at: datetime
    resolved_at: datetime | None
