"""Ed25519 keys as the configuration carries them: a private key is the base64 of its
32-byte seed, a public key the base64 of its 32 raw bytes. Service tokens
(service_identity.py) and event signatures (authenticity.py) both use them; provisioning and
the deployment's secrets make them."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey


def _raw(encoded: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{what} is not base64") from exc
    if len(raw) != 32:
        raise ValueError(f"{what} must be 32 bytes")
    return raw


def private_key(seed: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_raw(seed, "an Ed25519 seed"))


def public_key(encoded: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(_raw(encoded, "an Ed25519 public key"))


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """A short stable name of a public key, so a verifier picks the key without trying all."""
    return hashlib.sha256(raw_public(key)).hexdigest()[:16]


@dataclass(frozen=True)
class KeyPair:
    """A key pair in the configuration's encoding."""

    private: str
    public: str

    @classmethod
    def new(cls) -> KeyPair:
        key = Ed25519PrivateKey.generate()
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return cls.of(base64.b64encode(seed).decode())

    @classmethod
    def of(cls, seed: str) -> KeyPair:
        """The pair of a given seed (its public half derived)."""
        public = raw_public(private_key(seed).public_key())
        return cls(seed, base64.b64encode(public).decode())
