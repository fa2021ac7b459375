"""Payments fixtures: an independent WeChat Pay v3 notification builder, a live uvicorn server,
and small helpers to look at what a test changed.

The builder follows WeChat Pay's public API v3 documentation (回调通知 / 签名验证 / 证书和回调报文
解密) and uses ``cryptography`` directly: it shares no code with ``zanloop.payments.v3``, so a
bug there cannot hide behind the same bug here.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import httpx2 as httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.conftest import TenantHandle, at_once, free_port  # noqa: F401  (imported from here by payment tests)
from zanloop.db import Database
from zanloop.ledger.tables import LedgerEntry, LedgerTransfer
from zanloop.payments import service as payments
from zanloop.payments.tables import ProviderNotification
from zanloop.sandbox import service as sandbox_service
from zanloop.sandbox.tables import SandboxPlatformKey

BEIJING = timezone(timedelta(hours=8))
T = TypeVar("T")


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def wechat_sign(key: rsa.RSAPrivateKey, *lines: str) -> str:
    """WECHATPAY2-SHA256-RSA2048: SHA256withRSA (PKCS#1 v1.5) over lines each ending in \\n."""
    message = "".join(f"{line}\n" for line in lines).encode()
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def beijing_time(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).astimezone(BEIJING).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Notification:
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class WeChatPay:
    """Plays WeChat Pay's servers towards one tenant's notify URL."""

    tenant_id: str
    mchid: str
    appid: str
    apiv3_key: str
    key_id: str
    private_key: rsa.RSAPrivateKey = field(repr=False)

    @property
    def notify_path(self) -> str:
        return f"/v1/payments/notify/{self.tenant_id}"

    def transaction(self, out_trade_no: str, total_fen: int, **changes: Any) -> dict[str, Any]:
        """A decrypted TRANSACTION.SUCCESS resource (支付成功通知 参数)."""
        resource: dict[str, Any] = {
            "mchid": self.mchid,
            "appid": self.appid,
            "out_trade_no": out_trade_no,
            "transaction_id": "4200" + "".join(secrets.choice("0123456789") for _ in range(24)),
            "trade_type": "JSAPI",
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "bank_type": "CMC",
            "attach": "",
            "success_time": beijing_time(),
            "payer": {"openid": "o_buyer"},
            "amount": {
                "total": total_fen,
                "payer_total": total_fen,
                "currency": "CNY",
                "payer_currency": "CNY",
            },
        }
        resource.update(changes)
        return resource

    def refund(
        self, out_trade_no: str, out_refund_no: str, refund_fen: int, total_fen: int, **changes: Any
    ) -> dict[str, Any]:
        """A decrypted REFUND.SUCCESS resource (退款结果通知 参数)."""
        resource: dict[str, Any] = {
            "mchid": self.mchid,
            "out_trade_no": out_trade_no,
            "transaction_id": "4200" + "".join(secrets.choice("0123456789") for _ in range(24)),
            "out_refund_no": out_refund_no,
            "refund_id": "5030" + "".join(secrets.choice("0123456789") for _ in range(24)),
            "refund_status": "SUCCESS",
            "success_time": beijing_time(),
            "user_received_account": "支付用户零钱",
            "amount": {
                "total": total_fen,
                "refund": refund_fen,
                "payer_total": total_fen,
                "payer_refund": refund_fen,
            },
        }
        resource.update(changes)
        return resource

    def encrypt(
        self, plaintext: dict[str, Any], original_type: str, apiv3_key: str | None = None
    ) -> dict[str, str]:
        """AEAD_AES_256_GCM under the APIv3 key; 12-byte nonce; associated_data beside it."""
        nonce = secrets.token_hex(6)
        associated_data = original_type
        ciphertext = AESGCM((apiv3_key or self.apiv3_key).encode()).encrypt(
            nonce.encode(),
            json.dumps(plaintext, ensure_ascii=False).encode(),
            associated_data.encode(),
        )
        return {
            "original_type": original_type,
            "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": associated_data,
            "nonce": nonce,
        }

    def notification(
        self,
        resource: dict[str, Any],
        *,
        event_type: str = "TRANSACTION.SUCCESS",
        notification_id: str | None = None,
        apiv3_key: str | None = None,
        signed_at: int | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
        serial: str | None = None,
    ) -> Notification:
        original_type = "refund" if event_type.startswith("REFUND.") else "transaction"
        body = json.dumps(
            {
                "id": notification_id or str(uuid.uuid4()),
                "create_time": beijing_time(),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": "退款成功" if original_type == "refund" else "支付成功",
                "resource": self.encrypt(resource, original_type, apiv3_key),
            },
            ensure_ascii=False,
        ).encode()
        return self.sign(body, signed_at=signed_at, signing_key=signing_key, serial=serial)

    def sign(
        self,
        body: bytes,
        *,
        signed_at: int | None = None,
        signing_key: rsa.RSAPrivateKey | None = None,
        serial: str | None = None,
    ) -> Notification:
        timestamp = str(signed_at if signed_at is not None else int(time.time()))
        nonce = secrets.token_hex(16)
        signature = wechat_sign(signing_key or self.private_key, timestamp, nonce, body.decode())
        return Notification(
            body,
            {
                "Content-Type": "application/json",
                "Wechatpay-Signature": signature,
                "Wechatpay-Timestamp": timestamp,
                "Wechatpay-Nonce": nonce,
                "Wechatpay-Serial": serial or self.key_id,
                "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            },
        )


@pytest.fixture(scope="session")
def sandbox_platform_key_pem() -> str:
    return private_pem(rsa_key())


@pytest.fixture
def db(db: Database, sandbox_platform_key_pem: str) -> Database:
    """The test database with the sandbox's platform key already in place, as in any running
    deployment (the sandbox would otherwise generate a 2048-bit key, ~60 ms of CPU, in every
    test)."""
    with db.session() as session:
        session.add(
            SandboxPlatformKey(
                key_id="PUB_KEY_ID_SANDBOX_0123456789ABCDEF",
                private_key_pem=sandbox_platform_key_pem,
            )
        )
    return db


@pytest.fixture
def wechat(db: Database, tenant: TenantHandle) -> WeChatPay:
    """WeChat Pay towards ``tenant``: the sandbox platform key signs, the tenant's APIv3 key
    encrypts."""
    with db.session() as session:
        key = sandbox_service.platform_key(session)
        config = payments.get_config(session, tenant.id)
        loaded = serialization.load_pem_private_key(
            key.private_key_pem.encode(), password=None, unsafe_skip_rsa_key_validation=True
        )
        assert isinstance(loaded, rsa.RSAPrivateKey)
        return WeChatPay(
            tenant_id=tenant.id,
            mchid=config.mchid,
            appid=config.appid,
            apiv3_key=config.apiv3_key,
            key_id=key.key_id,
            private_key=loaded,
        )


def count(db: Database, table: Any) -> int:
    with db.read_session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


@dataclass(frozen=True)
class Totals:
    """What a notification can change, counted across every tenant."""

    ledger_transfers: int
    ledger_entries: int
    notifications: int


def totals(db: Database) -> Totals:
    return Totals(
        count(db, LedgerTransfer), count(db, LedgerEntry), count(db, ProviderNotification)
    )


@pytest.fixture
def balance(client: TestClient) -> Callable[[TenantHandle, str], int]:
    def read(t: TenantHandle, owner: str = "merchant") -> int:
        response = client.get(f"/v1/ledger/balances/{owner}", headers=t.headers)
        assert response.status_code == 200, response.text
        return int(response.json()["balance"])

    return read


@pytest.fixture
def order_status(client: TestClient) -> Callable[[TenantHandle, str], str]:
    def read(t: TenantHandle, order_id: str) -> str:
        response = client.get(f"/v1/payments/orders/{order_id}", headers=t.headers)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])

    return read


# Sending notifications -----------------------------------------------------------------------


def send(client: TestClient, wechat: WeChatPay, notification: Notification) -> httpx.Response:
    return client.post(wechat.notify_path, content=notification.body, headers=notification.headers)


def post(http: httpx.Client, url: str, notification: Notification) -> int:
    return http.post(url, content=notification.body, headers=notification.headers).status_code


def assert_refused(response: httpx.Response, status_code: int) -> None:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert body["code"] == "FAIL"
    assert isinstance(body["message"], str)
    assert body["message"]


# The API, as an integrator calls it --------------------------------------------------------


def refund(client: TestClient, t: TenantHandle, order_id: str, **body: Any) -> Any:
    return client.post(
        f"/v1/payments/orders/{order_id}/refunds", json=body or None, headers=t.write_headers()
    )


def order_of(client: TestClient, t: TenantHandle, order_id: str) -> dict[str, Any]:
    response = client.get(f"/v1/payments/orders/{order_id}", headers=t.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def sandbox(client: TestClient, t: TenantHandle, order: dict[str, Any], action: str) -> Any:
    return client.post(f"/v1/sandbox/orders/{order['out_trade_no']}/{action}", headers=t.headers)
