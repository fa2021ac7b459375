"""A local stand-in for api.mch.weixin.qq.com: just enough of the v3 API for WeChatPayProvider
(JSAPI order, query, close, refund, refund query). Like the real gateway it refuses requests
whose merchant signature does not verify, and signs every answer with its platform key."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.payments.conftest import beijing_time, rsa_key, wechat_sign

AUTH = re.compile(r'(\w+)="([^"]*)"')


class Gateway:
    """The gateway's state: its platform key, the orders and refunds it holds."""

    def __init__(self) -> None:
        self.platform_key = rsa_key()
        self.key_id = "PUB_KEY_ID_0119000001" + secrets.token_hex(4).upper()
        self.merchant_key: rsa.RSAPublicKey | None = None
        self.orders: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.broken: int | None = None  # answer every request with this status
        self.sign_answers = True
        self.url = ""

    def pay(self, out_trade_no: str) -> None:
        order = self.orders[out_trade_no]
        order |= {
            "trade_state": "SUCCESS",
            "trade_state_desc": "支付成功",
            "transaction_id": "4200" + secrets.token_hex(12),
            "success_time": beijing_time(),
            "trade_type": "JSAPI",
            "bank_type": "CMC",
        }
        order["amount"] |= {"payer_total": order["amount"]["total"], "payer_currency": "CNY"}

    def settle(self, out_refund_no: str) -> None:
        self.refunds[out_refund_no] |= {"status": "SUCCESS", "success_time": beijing_time()}

    def answer(self, method: str, target: str, body: str, auth: str) -> tuple[int, Any]:
        self.calls.append(f"{method} {urlsplit(target).path}")
        if self.broken:
            return self.broken, {"code": "SYSTEM_ERROR", "message": "系统错误"}
        fields = dict(AUTH.findall(auth))
        assert self.merchant_key is not None
        try:
            self.merchant_key.verify(
                base64.b64decode(fields["signature"]),
                f"{method}\n{target}\n{fields['timestamp']}\n{fields['nonce_str']}\n{body}\n".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except Exception:
            return 401, {"code": "SIGN_ERROR", "message": "签名错误"}
        data = json.loads(body) if body else {}
        path = urlsplit(target).path
        if method == "POST" and path == "/v3/pay/transactions/jsapi":
            self.orders[data["out_trade_no"]] = {
                "appid": data["appid"],
                "mchid": data["mchid"],
                "out_trade_no": data["out_trade_no"],
                "trade_state": "NOTPAY",
                "trade_state_desc": "订单未支付",
                "payer": data["payer"],
                "amount": dict(data["amount"]),
                "request": data,
            }
            return 200, {"prepay_id": "wx" + secrets.token_hex(15)}
        if match := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)", path):
            order = self.orders.get(match[1])
            if order is None:
                return 404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"}
            return 200, {k: v for k, v in order.items() if k != "request"}
        if match := re.fullmatch(r"/v3/pay/transactions/out-trade-no/([^/]+)/close", path):
            self.orders[match[1]]["trade_state"] = "CLOSED"
            return 204, None
        if method == "POST" and path == "/v3/refund/domestic/refunds":
            order = self.orders[data["out_trade_no"]]
            self.refunds[data["out_refund_no"]] = {
                "refund_id": "5030" + secrets.token_hex(12),
                "out_refund_no": data["out_refund_no"],
                "transaction_id": order["transaction_id"],
                "out_trade_no": data["out_trade_no"],
                "channel": "ORIGINAL",
                "user_received_account": "支付用户零钱",
                "create_time": beijing_time(),
                "status": "PROCESSING",
                "amount": data["amount"] | {"payer_refund": data["amount"]["refund"]},
            }
            return 200, self.refunds[data["out_refund_no"]]
        if match := re.fullmatch(r"/v3/refund/domestic/refunds/([^/]+)", path):
            refund = self.refunds.get(match[1])
            return (200, refund) if refund else (404, {"code": "RESOURCE_NOT_EXISTS"})
        return 404, {"code": "NOT_FOUND", "message": path}

    def signed(self, status: int, payload: Any) -> tuple[bytes, dict[str, str]]:
        text = "" if payload is None else json.dumps(payload, ensure_ascii=False)
        timestamp, nonce = str(int(time.time())), secrets.token_hex(16)
        key = self.platform_key if self.sign_answers else rsa_key()
        headers = {
            "Request-ID": secrets.token_hex(8),
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Serial": self.key_id,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
            "Wechatpay-Signature": wechat_sign(key, timestamp, nonce, text),
        }
        if payload is not None:
            headers["Content-Type"] = "application/json; charset=utf-8"
        return text.encode(), headers


def handler(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            status, payload = gateway.answer(
                self.command, self.path, body, self.headers.get("Authorization", "")
            )
            raw, headers = gateway.signed(status, payload)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
