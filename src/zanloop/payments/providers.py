"""Payment providers: the built-in sandbox and the real WeChat Pay API v3.

Both speak in the provider's own facts (``TradeFacts``, ``RefundFacts``); the payments service
decides what those facts mean for our orders.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from zanloop.config import Settings
from zanloop.errors import ProviderError
from zanloop.payments import v3
from zanloop.payments.domain import (
    RefundFacts,
    TradeFacts,
    refund_facts_from_resource,
    trade_facts_from_resource,
)
from zanloop.payments.tables import PaymentProviderConfig


@dataclass(frozen=True)
class OrderRequest:
    out_trade_no: str
    description: str
    amount_fen: int
    currency: str
    payer_openid: str
    attach: str | None
    notify_url: str
    expires_at: datetime


@dataclass(frozen=True)
class RefundRequest:
    out_trade_no: str
    out_refund_no: str
    amount_fen: int
    total_fen: int
    reason: str
    notify_url: str


class PaymentProvider(Protocol):
    name: str

    def create_order(
        self, session: Session, config: PaymentProviderConfig, request: OrderRequest
    ) -> str:
        """Place the order; returns the prepay_id."""

    def query_order(
        self, session: Session, config: PaymentProviderConfig, out_trade_no: str
    ) -> TradeFacts | None: ...

    def close_order(
        self, session: Session, config: PaymentProviderConfig, out_trade_no: str
    ) -> None: ...

    def refund(
        self, session: Session, config: PaymentProviderConfig, request: RefundRequest
    ) -> RefundFacts: ...

    def query_refund(
        self, session: Session, config: PaymentProviderConfig, out_refund_no: str
    ) -> RefundFacts | None: ...


def jsapi_pay_params(config: PaymentProviderConfig, prepay_id: str) -> dict[str, str]:
    """What a WeChat mini-program or JSAPI page passes to ``wx.requestPayment``."""
    timestamp = str(int(time.time()))
    nonce = v3.new_nonce()
    package = f"prepay_id={prepay_id}"
    # The key was validated when it was configured; parsing it again skips that.
    merchant_key = v3.load_private_key(config.merchant_private_key_pem, validate=False)
    pay_sign = v3.sign(merchant_key, config.appid, timestamp, nonce, package)
    return {
        "appId": config.appid,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": pay_sign,
    }


class SandboxProvider:
    """The in-process WeChat Pay stand-in (see ``zanloop.sandbox``)."""

    name = "sandbox"

    def __init__(self, time_scale: float = 1.0) -> None:
        # Real refunds take seconds to days; the sandbox settles one after 3 (scaled) seconds.
        self.refund_settle_seconds = 3.0 * time_scale

    def create_order(
        self, session: Session, config: PaymentProviderConfig, request: OrderRequest
    ) -> str:
        from zanloop.sandbox import service as sandbox

        return sandbox.create_order(
            session,
            mchid=config.mchid,
            appid=config.appid,
            out_trade_no=request.out_trade_no,
            description=request.description,
            amount_fen=request.amount_fen,
            payer_openid=request.payer_openid,
            attach=request.attach,
            notify_url=request.notify_url,
            expires_at=request.expires_at,
        )

    def query_order(
        self, session: Session, config: PaymentProviderConfig, out_trade_no: str
    ) -> TradeFacts | None:
        from zanloop.sandbox import service as sandbox

        data = sandbox.query_order(session, config.mchid, out_trade_no)
        return None if data is None else trade_facts_from_resource(data)

    def close_order(
        self, session: Session, config: PaymentProviderConfig, out_trade_no: str
    ) -> None:
        from zanloop.sandbox import service as sandbox

        sandbox.close_order(session, config.mchid, out_trade_no)

    def refund(
        self, session: Session, config: PaymentProviderConfig, request: RefundRequest
    ) -> RefundFacts:
        from zanloop.sandbox import service as sandbox

        data = sandbox.create_refund(
            session,
            mchid=config.mchid,
            out_trade_no=request.out_trade_no,
            out_refund_no=request.out_refund_no,
            amount_fen=request.amount_fen,
            total_fen=request.total_fen,
            reason=request.reason,
            notify_url=request.notify_url,
            settle_after_seconds=self.refund_settle_seconds,
        )
        return refund_facts_from_resource(data)

    def query_refund(
        self, session: Session, config: PaymentProviderConfig, out_refund_no: str
    ) -> RefundFacts | None:
        from zanloop.sandbox import service as sandbox

        data = sandbox.query_refund(session, config.mchid, out_refund_no)
        return None if data is None else refund_facts_from_resource(data)


class WeChatPayProvider:
    """WeChat Pay API v3 through the ``wechatpayv3`` SDK, in platform-public-key mode."""

    name = "wechatpay"

    def __init__(self, gateway: str | None = None) -> None:
        self.gateway = gateway

    def _client(self, config: PaymentProviderConfig, notify_url: str | None = None) -> Any:
        from wechatpayv3 import WeChatPay, WeChatPayType

        client = WeChatPay(
            wechatpay_type=WeChatPayType.JSAPI,
            mchid=config.mchid,
            private_key=config.merchant_private_key_pem,
            cert_serial_no=config.merchant_serial_no,
            appid=config.appid,
            apiv3_key=config.apiv3_key,
            notify_url=notify_url,
            public_key=config.platform_public_key_pem,
            public_key_id=config.platform_public_key_id,
            timeout=(5, 15),
        )
        if self.gateway:
            client._core._gate_way = self.gateway.rstrip("/")
        return client

    @staticmethod
    def _call(request: Callable[[], tuple[int, Any]]) -> tuple[int, Any]:
        """One SDK call. The SDK raises bare ``Exception`` when an answer's signature does not
        verify, and ``requests`` errors when the gateway cannot be reached: both are the
        provider failing (502), not a bug of ours (500)."""
        try:
            return request()
        except Exception as exc:
            raise ProviderError(f"WeChat Pay request failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _answer(code: int, message: Any, *, allow_404: bool = False) -> dict[str, Any] | None:
        if allow_404 and code == 404:
            return None
        try:
            body = json.loads(message) if isinstance(message, str) and message else {}
        except ValueError as exc:
            raise ProviderError(f"WeChat Pay answered {code} with malformed JSON") from exc
        if not 200 <= code < 300:
            detail = f"{body.get('code', '')} {body.get('message', '')}".strip()
            raise ProviderError(f"WeChat Pay answered {code}: {detail}".rstrip(": "))
        return body if isinstance(body, dict) else {}

    def create_order(
        self, session: Session, config: PaymentProviderConfig, request: OrderRequest
    ) -> str:
        client = self._client(config, request.notify_url)
        code, message = self._call(
            lambda: client.pay(
                description=request.description,
                out_trade_no=request.out_trade_no,
                amount={"total": request.amount_fen, "currency": request.currency},
                payer={"openid": request.payer_openid},
                time_expire=request.expires_at.isoformat(timespec="seconds"),
                attach=request.attach,
                notify_url=request.notify_url,
            )
        )
        body = self._answer(code, message) or {}
        if "prepay_id" not in body:
            raise ProviderError("WeChat Pay returned no prepay_id")
        return str(body["prepay_id"])

    def query_order(
        self, session: Session, config: PaymentProviderConfig, out_trade_no: str
    ) -> TradeFacts | None:
        client = self._client(config)
        code, message = self._call(lambda: client.query(out_trade_no=out_trade_no))
        body = self._answer(code, message, allow_404=True)
        return None if body is None else trade_facts_from_resource(body)

    def close_order(
        self, session: Session, config: PaymentProviderConfig, out_trade_no: str
    ) -> None:
        client = self._client(config)
        code, message = self._call(lambda: client.close(out_trade_no=out_trade_no))
        self._answer(code, message)

    def refund(
        self, session: Session, config: PaymentProviderConfig, request: RefundRequest
    ) -> RefundFacts:
        client = self._client(config)
        code, message = self._call(
            lambda: client.refund(
                out_refund_no=request.out_refund_no,
                amount={
                    "refund": request.amount_fen,
                    "total": request.total_fen,
                    "currency": "CNY",
                },
                out_trade_no=request.out_trade_no,
                reason=request.reason or None,
                notify_url=request.notify_url,
            )
        )
        return refund_facts_from_resource(self._answer(code, message) or {})

    def query_refund(
        self, session: Session, config: PaymentProviderConfig, out_refund_no: str
    ) -> RefundFacts | None:
        client = self._client(config)
        code, message = self._call(lambda: client.query_refund(out_refund_no=out_refund_no))
        body = self._answer(code, message, allow_404=True)
        return None if body is None else refund_facts_from_resource(body)


def provider_for(name: str, settings: Settings) -> PaymentProvider:
    if name == "sandbox":
        return SandboxProvider(settings.sandbox_retry_scale)
    if name == "wechatpay":
        return WeChatPayProvider(gateway=settings.wechatpay_gateway)
    raise ProviderError(f"unknown payment provider {name!r}")
