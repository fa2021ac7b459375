from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

OPENID = r"^[A-Za-z0-9_\-]{1,128}$"


class BindingCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o", "real_name_verified": True}]
        },
    )

    openid: str = Field(pattern=OPENID, description="The user's WeChat Pay openid.")
    real_name_verified: bool = Field(
        description="Whether the payer passed WeChat Pay's real-name verification (from your "
        "own records): paid pins and pay-later need a verified payer."
    )


class Binding(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: str
    openid: str
    real_name_verified: bool
    bound_at: datetime
