"""Keyed hashes that let identity find an account by e-mail without storing the address."""

from __future__ import annotations

import hashlib
import hmac

from expensura_identity.accounts.domain import normalise_email


def lookup_key(master_key: str, purpose: str, value: str) -> bytes:
    secret = hashlib.sha256(f"expensura-lookup:{purpose}:".encode() + master_key.encode())
    return hmac.new(secret.digest(), value.encode(), hashlib.sha256).digest()


def email_lookup(master_key: str, email: str) -> bytes:
    return lookup_key(master_key, "email", normalise_email(email))
