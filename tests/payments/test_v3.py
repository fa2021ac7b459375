"""The v3 wire protocol: RSA-SHA256 signatures, AES-256-GCM resources, the timestamp window.
Checked against ``cryptography`` used directly, so each side is tested by the other."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tests.payments.conftest import wechat_sign
from zanloop.payments import v3

APIV3_KEY = "0123456789abcdefghijABCDEFGHIJ01"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return v3.generate_private_key()


def test_a_signature_verifies_with_the_public_key(key: rsa.RSAPrivateKey) -> None:
    signature = v3.sign(key, "1700000000", "nonce", '{"a":1}')

    assert v3.verify(key.public_key(), signature, "1700000000", "nonce", '{"a":1}')
    # The message is each part followed by "\n", as WeChat Pay defines it.
    key.public_key().verify(
        base64.b64decode(signature),
        b'1700000000\nnonce\n{"a":1}\n',
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_a_signature_made_elsewhere_verifies(key: rsa.RSAPrivateKey) -> None:
    signature = wechat_sign(key, "1700000000", "n", "body")

    assert v3.verify(key.public_key(), signature, "1700000000", "n", "body")


@pytest.mark.parametrize(
    "parts",
    [
        pytest.param(("1700000001", "nonce", '{"a":1}'), id="other-timestamp"),
        pytest.param(("1700000000", "nonce2", '{"a":1}'), id="other-nonce"),
        pytest.param(("1700000000", "nonce", '{"a":2}'), id="other-body"),
        pytest.param(("1700000000", "nonce", '{"a":1} '), id="trailing-space"),
    ],
)
def test_a_signature_does_not_verify_other_content(
    key: rsa.RSAPrivateKey, parts: tuple[str, str, str]
) -> None:
    signature = v3.sign(key, "1700000000", "nonce", '{"a":1}')

    assert not v3.verify(key.public_key(), signature, *parts)


@pytest.mark.parametrize(
    "signature",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64!", id="not-base64"),
        pytest.param(base64.b64encode(b"short").decode(), id="wrong-length"),
    ],
)
def test_garbage_signatures_do_not_verify(key: rsa.RSAPrivateKey, signature: str) -> None:
    assert not v3.verify(key.public_key(), signature, "1", "n", "b")


def test_another_keys_signature_does_not_verify(key: rsa.RSAPrivateKey) -> None:
    other = v3.generate_private_key()

    assert not v3.verify(key.public_key(), v3.sign(other, "1", "n", "b"), "1", "n", "b")


def test_keys_round_trip_through_pem(key: rsa.RSAPrivateKey) -> None:
    private = v3.load_private_key(v3.private_key_pem(key))
    public = v3.load_public_key(v3.public_key_pem(key))

    assert v3.verify(public, v3.sign(private, "x"), "x")
    assert v3.public_key_pem(public) == v3.public_key_pem(key)


def test_sign_body_gives_the_five_headers(key: rsa.RSAPrivateKey) -> None:
    headers = v3.sign_body(key, "PUB_KEY_ID_1", '{"id":"n1"}', 1700000000).as_dict()

    assert headers["Wechatpay-Serial"] == "PUB_KEY_ID_1"
    assert headers["Wechatpay-Timestamp"] == "1700000000"
    assert headers["Wechatpay-Signature-Type"] == "WECHATPAY2-SHA256-RSA2048"
    assert v3.verify(
        key.public_key(),
        headers["Wechatpay-Signature"],
        "1700000000",
        headers["Wechatpay-Nonce"],
        '{"id":"n1"}',
    )
    assert (
        v3.SignedHeaders.from_mapping({k.lower(): v for k, v in headers.items()}).as_dict()
        == headers
    )


@pytest.mark.parametrize(
    "missing",
    ["Wechatpay-Signature", "Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial"],
)
def test_signed_headers_name_what_is_missing(key: rsa.RSAPrivateKey, missing: str) -> None:
    headers = v3.sign_body(key, "K", "{}", 1).as_dict()
    del headers[missing]

    with pytest.raises(v3.ProtocolError, match=missing):
        v3.SignedHeaders.from_mapping(headers)


RESOURCE: dict[str, Any] = {"out_trade_no": "ORDER0001", "amount": {"total": 990}, "note": "拿铁"}


def test_a_resource_round_trips() -> None:
    encrypted = v3.encrypt_resource(APIV3_KEY, json.dumps(RESOURCE), "transaction", "transaction")

    assert encrypted["algorithm"] == "AEAD_AES_256_GCM"
    assert len(encrypted["nonce"]) == 12
    assert v3.decrypt_resource(APIV3_KEY, encrypted) == RESOURCE


def test_a_resource_encrypted_elsewhere_decrypts() -> None:
    nonce = "abcdefghijkl"
    ciphertext = AESGCM(APIV3_KEY.encode()).encrypt(
        nonce.encode(), json.dumps(RESOURCE).encode(), b"refund"
    )
    resource = {
        "algorithm": "AEAD_AES_256_GCM",
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "nonce": nonce,
        "associated_data": "refund",
    }

    assert v3.decrypt_resource(APIV3_KEY, resource) == RESOURCE


def _flip_first_byte(ciphertext_b64: str) -> str:
    raw = bytearray(base64.b64decode(ciphertext_b64))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize(
    ("change", "apiv3_key"),
    [
        pytest.param(
            lambda r: r | {"ciphertext": _flip_first_byte(r["ciphertext"])},
            APIV3_KEY,
            id="bit-flip",
        ),
        pytest.param(
            lambda r: r | {"associated_data": "refund"}, APIV3_KEY, id="other-associated-data"
        ),
        pytest.param(lambda r: r | {"nonce": "000000000000"}, APIV3_KEY, id="other-nonce"),
        pytest.param(lambda r: r | {"ciphertext": "%%%"}, APIV3_KEY, id="not-base64"),
        pytest.param(
            lambda r: {k: v for k, v in r.items() if k != "nonce"}, APIV3_KEY, id="no-nonce"
        ),
        pytest.param(lambda r: r | {"algorithm": "AES_128_CBC"}, APIV3_KEY, id="other-algorithm"),
        pytest.param(lambda r: r, "X" * 32, id="other-key"),
        pytest.param(lambda r: r, "short", id="key-not-32-bytes"),
        pytest.param(lambda r: "not an object", APIV3_KEY, id="not-an-object"),
    ],
)
def test_a_tampered_resource_does_not_decrypt(change: Any, apiv3_key: str) -> None:
    encrypted = v3.encrypt_resource(APIV3_KEY, json.dumps(RESOURCE), "transaction", "transaction")

    with pytest.raises(v3.ProtocolError):
        v3.decrypt_resource(apiv3_key, change(encrypted))


@pytest.mark.parametrize("plaintext", ['"a string"', "[1, 2]", "not json"], ids=str)
def test_a_resource_must_decrypt_to_a_json_object(plaintext: str) -> None:
    encrypted = v3.encrypt_resource(APIV3_KEY, plaintext, "transaction", "transaction")

    with pytest.raises(v3.ProtocolError):
        v3.decrypt_resource(APIV3_KEY, encrypted)


NOW = 1_700_000_000


@pytest.mark.parametrize(
    ("timestamp", "inside"),
    [
        pytest.param(str(NOW), True, id="now"),
        pytest.param(str(NOW - 300), True, id="5-min-old"),
        pytest.param(str(NOW + 300), True, id="5-min-ahead"),
        pytest.param(str(NOW - 301), False, id="just-over-5-min-old"),
        pytest.param(str(NOW + 301), False, id="just-over-5-min-ahead"),
        pytest.param(str(NOW - 86_400), False, id="a-day-old"),
        pytest.param("", False, id="empty"),
        pytest.param("1.7e9", False, id="not-an-integer"),
        pytest.param(str(NOW * 1000), False, id="milliseconds"),
    ],
)
def test_timestamp_window(timestamp: str, inside: bool) -> None:
    assert v3.within_window(timestamp, NOW, 300) is inside
