from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field


class EndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://example.com/hooks/zanloop", "event_types": ["payment.*"]}]
        },
    )

    url: AnyHttpUrl
    event_types: list[str] = Field(
        default_factory=list, description="Event types or families (`payment.*`); empty for all."
    )
    description: str = Field(default="", max_length=500)


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl | None = None
    event_types: list[str] | None = None
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


class Endpoint(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    created_at: datetime


class EndpointWithSecret(Endpoint):
    secret: str = Field(description="Verify `webhook-signature` with this (Standard Webhooks).")


class Message(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Sent as `webhook-id`; the same on every retry and replay.")
    event_type: str
    payload: dict[str, Any]
    created_at: datetime


class Attempt(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attempt: int
    status_code: int | None
    response_body: str | None
    error: str | None
    duration_ms: int
    created_at: datetime


class Delivery(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    message_id: str
    endpoint_id: str
    status: str = Field(description="PENDING, RETRYING, SUCCEEDED or FAILED.")
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


class DeliveryDetail(Delivery):
    attempt_log: list[Attempt]


class ReplayCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint_id: str | None = Field(default=None, description="Only this endpoint; all interested if absent.")
