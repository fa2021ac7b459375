from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AnyHttpUrl, BaseModel, ConfigDict, Field

URL_MAX_LENGTH = 1000  # the column's length
# Ids look like ``whe_01J...``; anything else (a NUL byte, say) cannot name a row.
ID_PATTERN = r"^[A-Za-z0-9_]{1,40}$"
# Event names and families: ``payment.succeeded``, ``payment.*``.
EVENT_TYPE_PATTERN = r"^[A-Za-z0-9_.*-]{1,100}$"


def _fits(url: AnyHttpUrl) -> AnyHttpUrl:
    # Checked after normalisation (punycode, percent-encoding), which can lengthen a URL.
    if len(str(url)) > URL_MAX_LENGTH:
        raise ValueError(f"URL is longer than {URL_MAX_LENGTH} characters")
    return url


def _no_nul(text: str) -> str:
    # PostgreSQL text cannot hold NUL; refuse it here rather than fail at the database.
    if "\x00" in text:
        raise ValueError("must not contain NUL characters")
    return text


EndpointUrl = Annotated[AnyHttpUrl, AfterValidator(_fits)]
EventType = Annotated[str, Field(pattern=EVENT_TYPE_PATTERN)]
EventTypes = Annotated[list[EventType], Field(max_length=100)]
Description = Annotated[str, Field(max_length=500), AfterValidator(_no_nul)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"url": "https://example.com/hooks/zanloop", "event_types": ["payment.*"]}]
        },
    )

    url: EndpointUrl
    event_types: EventTypes = Field(
        default_factory=list, description="Event types or families (`payment.*`); empty for all."
    )
    description: Description = ""


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: EndpointUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
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

    endpoint_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="Only this endpoint; all interested if absent.",
    )
