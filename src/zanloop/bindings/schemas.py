from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

OPENID = r"^[A-Za-z0-9_\-]{1,128}$"


class BindingCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}]},
    )

    openid: str = Field(pattern=OPENID, description="The user's WeChat Pay openid.")
    real_name_verified: bool = Field(
        default=True,
        description="WeChat Pay accounts that can pay are real-name verified; say false for a "
        "payer you know is not.",
    )


class Binding(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: str
    openid: str
    real_name_verified: bool
    bound_at: datetime
