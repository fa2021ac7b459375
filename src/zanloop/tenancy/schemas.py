from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from zanloop.tenancy.domain import Scope

# PostgreSQL text cannot hold NUL characters; refuse them as invalid input, not a 500.
NO_NUL = r"^[^\x00]*$"


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "checkout app", "scopes": ["app"]}]},
    )

    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    scopes: list[Scope] = Field(min_length=1)
    creator_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=190,
        pattern=NO_NUL,
        description="Required for a key with just the creator scope: the creator it acts for.",
    )


class ApiKey(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    scopes: list[str]
    creator_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The key itself. Shown only in this response; store it now.")


class Tenant(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    kind: str
    parent_id: str | None
    created_at: datetime
