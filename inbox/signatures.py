"""Provider webhook signatures: Mailgun's HMAC-SHA256 of timestamp+token, SendGrid's signed Inbound Parse (ECDSA),
and the replay check: a signed request is accepted once while its signature is fresh.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis import Redis

# Namespaced: the Redis database is shared with the job queues.
REPLAY_KEY_PREFIX = "supportline:mail-webhook"


class ReplayCheckUnavailable(RuntimeError):
    """The store of used signatures (Redis) cannot be reached: the request cannot be checked, so it is refused."""


def mailgun_valid(signing_key: str, timestamp: str, token: str, signature: str, *, now: float, max_age: int) -> bool:
    """Mailgun: hex HMAC-SHA256 of ``timestamp + token`` with the webhook signing key, and a fresh timestamp."""
    if not signing_key or not timestamp or not token or not signature:
        return False
    try:
        if abs(now - float(timestamp)) > max_age:
            return False
    except ValueError:
        return False
    expected = hmac.new(signing_key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def sendgrid_valid(
    public_key_b64: str, timestamp: str, body: bytes, signature_b64: str, *, now: float, max_age: int
) -> bool:
    """SendGrid: base64 DER ECDSA (P-256, SHA-256) signature of ``timestamp`` followed by the raw request body,
    checked with the base64 DER public key of the security policy, and a fresh timestamp."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    if not public_key_b64 or not timestamp or not signature_b64:
        return False
    try:
        if abs(now - float(timestamp)) > max_age:
            return False
        text = public_key_b64.strip()
        key = load_pem_public_key(text.encode()) if "BEGIN" in text else load_der_public_key(base64.b64decode(text))
        signature = base64.b64decode(signature_b64)
    except (ValueError, binascii.Error, TypeError):
        return False
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False
    try:
        key.verify(signature, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def replay_key(provider: str, signed: bytes) -> str:
    """The Redis key remembering one signed request: a digest of what the provider signed, never the secret part.

    Mailgun signs timestamp + token, and its token is unique per request; SendGrid signs timestamp + body and
    gives no id, so the signed bytes themselves identify the request (not the ECDSA signature, which a third
    party can rewrite into another valid one).
    """
    return f"{REPLAY_KEY_PREFIX}:{provider}:{hashlib.sha256(signed).hexdigest()}"


def first_use(redis: Redis, key: str, *, timestamp: str, now: float, max_age: int) -> bool:
    """Remember ``key`` for as long as its timestamp is accepted (``SET NX EX``); False when already used.

    Raises ReplayCheckUnavailable when Redis cannot answer.
    """
    from redis.exceptions import RedisError

    lifetime = max(1, math.ceil(float(timestamp) + max_age - now) + 1)  # a second past its last accepted moment
    try:
        return bool(redis.set(key, b"1", nx=True, ex=lifetime))
    except (RedisError, OSError) as exc:
        raise ReplayCheckUnavailable(str(exc)) from exc


def forget(redis: Redis, key: str) -> None:
    """Release ``key`` when the request was not stored after all, so the provider's retry is accepted."""
    from redis.exceptions import RedisError

    try:
        redis.delete(key)
    except (RedisError, OSError):
        pass  # the key expires with the signature; the provider's retry carries a new one or waits it out
