from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

OUT_NO_PATTERN = r"^[A-Za-z0-9_\-|*]{6,32}$"


class PaymentOrderCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "amount_fen": 990,
                    "description": "Latte, large",
                    "payer_openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                }
            ]
        },
    )

    amount_fen: int = Field(gt=0, le=100_000_000, description="Amount in fen (1 CNY = 100 fen).")
    currency: Literal["CNY"] = "CNY"
    description: str = Field(min_length=1, max_length=127)
    payer_openid: str = Field(
        min_length=1, max_length=128, description="The buyer's WeChat openid."
    )
    out_trade_no: str | None = Field(
        default=None, pattern=OUT_NO_PATTERN, description="Your order number; generated if absent."
    )
    attach: str | None = Field(
        default=None, max_length=128, description="Returned untouched by the provider."
    )
    payee: str = Field(
        default="merchant",
        min_length=1,
        max_length=200,
        description="Ledger owner credited when the payment succeeds.",
    )
    expire_minutes: int = Field(default=120, ge=1, le=1440)
    metadata: dict[str, Any] = Field(default_factory=dict)


class PaymentOrder(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    out_trade_no: str
    provider: str
    status: str = Field(description="NOTPAY, USERPAYING, SUCCESS, REFUND, CLOSED or PAYERROR.")
    amount_fen: int
    currency: str
    description: str
    payer_openid: str
    payee: str
    attach: str | None
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))
    transaction_id: str | None
    prepay_id: str | None
    refunded_fen: int
    refund_reserved_fen: int
    expires_at: datetime
    success_time: datetime | None
    created_at: datetime
    updated_at: datetime


class PayParams(BaseModel):
    """Parameters for ``wx.requestPayment`` (JSAPI / mini-program), signed by the merchant."""

    appId: str
    timeStamp: str
    nonceStr: str
    package: str
    signType: str
    paySign: str


class PaymentDisclosure(BaseModel):
    what: str
    amount_fen: int
    currency: str
    expires_at: datetime
    refund_terms: str


class PaymentOrderCreated(PaymentOrder):
    pay_params: PayParams
    disclosure: PaymentDisclosure


class RefundCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"amount_fen": 300, "reason": "one cup missing"}]},
    )

    amount_fen: int | None = Field(
        default=None, gt=0, description="Fen to refund; everything still refundable if absent."
    )
    out_refund_no: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-|*@]{1,64}$")
    reason: str = Field(default="", max_length=80)


class Refund(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    order_id: str
    out_refund_no: str
    refund_id: str | None
    amount_fen: int
    reason: str
    status: str = Field(description="PROCESSING, SUCCESS, ABNORMAL or CLOSED.")
    created_at: datetime
    success_time: datetime | None


class ProviderConfigUpdate(BaseModel):
    """Real WeChat Pay credentials (public-key mode)."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["wechatpay", "sandbox"] = "wechatpay"
    mchid: str = Field(min_length=1, max_length=32)
    appid: str = Field(min_length=1, max_length=32)
    merchant_serial_no: str = Field(min_length=1, max_length=64)
    merchant_private_key_pem: str = Field(min_length=1)
    apiv3_key: str = Field(min_length=32, max_length=32)
    platform_public_key_id: str = Field(min_length=1, max_length=80)
    platform_public_key_pem: str = Field(min_length=1)


class ProviderConfig(BaseModel):
    """The non-secret part of a tenant's provider configuration."""

    model_config = ConfigDict(from_attributes=True)

    provider: str
    mchid: str
    appid: str
    merchant_serial_no: str
    platform_public_key_id: str
    platform_public_key_pem: str
    notify_url: str
    updated_at: datetime
