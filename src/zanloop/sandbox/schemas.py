from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SandboxPay(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payer_openid: str | None = Field(
        default=None, description="Must match the order's payer if given."
    )


class SandboxOrder(BaseModel):
    """The sandbox's own view of an order, as WeChat Pay's order query would answer."""

    resource: dict[str, Any]


class PlatformKey(BaseModel):
    public_key_id: str
    public_key_pem: str


class SandboxNotification(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    event_type: str
    notify_url: str
    status: str = Field(description="PENDING, RETRYING, DELIVERED or FAILED.")
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
