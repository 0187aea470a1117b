"""Provider webhook signatures: Mailgun's HMAC-SHA256 of timestamp+token, SendGrid's signed Inbound Parse (ECDSA)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


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
