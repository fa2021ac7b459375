"""The WeChat Pay API v3 wire protocol: signatures and encrypted resources. Pure functions.

A notification is signed over ``"{timestamp}\\n{nonce}\\n{body}\\n"`` with RSA PKCS#1 v1.5 and
SHA-256 (``WECHATPAY2-SHA256-RSA2048``); its ``resource`` is AES-256-GCM encrypted under the
merchant's 32-byte APIv3 key, with the nonce and associated data sent beside the ciphertext.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
ALGORITHM = "AEAD_AES_256_GCM"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SERIAL = "Wechatpay-Serial"
HEADER_SIGNATURE_TYPE = "Wechatpay-Signature-Type"


class ProtocolError(ValueError):
    """A notification that does not follow the v3 protocol."""


def generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def public_key_pem(key: rsa.RSAPrivateKey | rsa.RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_private_key(pem: str, *, validate: bool = True) -> rsa.RSAPrivateKey:
    """Parse a PEM key. Validating an RSA key costs ~50 ms of CPU: do it when a key comes in
    (``configure``), not each time a key we stored ourselves signs something (every order's pay
    parameters, every sandbox notification). Parsed keys are cached."""
    return _load_private_key(pem, validate)


@lru_cache(maxsize=256)
def _load_private_key(pem: str, validate: bool) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(
        pem.encode(), password=None, unsafe_skip_rsa_key_validation=not validate
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ProtocolError("not an RSA private key")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, rsa.RSAPublicKey):
        raise ProtocolError("not an RSA public key")
    return key


def message(*parts: str) -> bytes:
    return "".join(f"{part}\n" for part in parts).encode()


def sign(private_key: rsa.RSAPrivateKey, *parts: str) -> str:
    signature = private_key.sign(message(*parts), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode()


def verify(public_key: rsa.RSAPublicKey, signature_b64: str, *parts: str) -> bool:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        public_key.verify(signature, message(*parts), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def new_nonce(length: int = 32) -> str:
    return secrets.token_hex(length // 2)


def encrypt_resource(
    apiv3_key: str, plaintext: str, associated_data: str, original_type: str
) -> dict[str, str]:
    nonce = secrets.token_urlsafe(9)[:12]
    ciphertext = AESGCM(_key_bytes(apiv3_key)).encrypt(
        nonce.encode(), plaintext.encode(), associated_data.encode()
    )
    return {
        "original_type": original_type,
        "algorithm": ALGORITHM,
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": associated_data,
        "nonce": nonce,
    }


def decrypt_resource(apiv3_key: str, resource: object) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise ProtocolError("resource is not a JSON object")
    if resource.get("algorithm") != ALGORITHM:
        raise ProtocolError(f"unsupported resource algorithm {resource.get('algorithm')!r}")
    try:
        plaintext = AESGCM(_key_bytes(apiv3_key)).decrypt(
            str(resource["nonce"]).encode(),
            base64.b64decode(resource["ciphertext"]),
            str(resource.get("associated_data") or "").encode(),
        )
        data = json.loads(plaintext)
    except (KeyError, InvalidTag, ValueError, binascii.Error) as exc:
        raise ProtocolError("resource cannot be decrypted with this merchant's APIv3 key") from exc
    if not isinstance(data, dict):
        raise ProtocolError("resource is not a JSON object")
    return data


def _key_bytes(apiv3_key: str) -> bytes:
    key = apiv3_key.encode()
    if len(key) != 32:
        raise ProtocolError("an APIv3 key is 32 bytes")
    return key


@dataclass(frozen=True)
class SignedHeaders:
    signature: str
    timestamp: str
    nonce: str
    serial: str
    signature_type: str

    @classmethod
    def from_mapping(cls, headers: dict[str, str]) -> SignedHeaders:
        lower = {k.lower(): v for k, v in headers.items()}
        missing = [
            h
            for h in (HEADER_SIGNATURE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SERIAL)
            if not lower.get(h.lower())
        ]
        if missing:
            raise ProtocolError(f"missing header(s): {', '.join(missing)}")
        return cls(
            signature=lower[HEADER_SIGNATURE.lower()],
            timestamp=lower[HEADER_TIMESTAMP.lower()],
            nonce=lower[HEADER_NONCE.lower()],
            serial=lower[HEADER_SERIAL.lower()],
            signature_type=lower.get(HEADER_SIGNATURE_TYPE.lower(), SIGNATURE_TYPE),
        )

    def as_dict(self) -> dict[str, str]:
        return {
            HEADER_SIGNATURE: self.signature,
            HEADER_TIMESTAMP: self.timestamp,
            HEADER_NONCE: self.nonce,
            HEADER_SERIAL: self.serial,
            HEADER_SIGNATURE_TYPE: self.signature_type,
        }


def sign_body(
    private_key: rsa.RSAPrivateKey, serial: str, body: str, timestamp: int
) -> SignedHeaders:
    nonce = new_nonce()
    return SignedHeaders(
        signature=sign(private_key, str(timestamp), nonce, body),
        timestamp=str(timestamp),
        nonce=nonce,
        serial=serial,
        signature_type=SIGNATURE_TYPE,
    )


def within_window(timestamp: str, now_epoch: int, window_seconds: int) -> bool:
    try:
        sent = int(timestamp)
    except ValueError:
        return False
    return abs(now_epoch - sent) <= window_seconds
