"""Standard Webhooks signatures (symmetric ``v1``), pure functions.

Per the Standard Webhooks specification (https://www.standardwebhooks.com,
``spec/standard-webhooks.md`` in github.com/standard-webhooks/standard-webhooks):

- signed content: ``f"{webhook_id}.{webhook_timestamp}.{raw_body}"``
- signature: ``"v1," + base64(HMAC-SHA256(key, signed content))``
- ``webhook-timestamp``: integer unix seconds
- a secret written ``whsec_<base64>`` is base64-decoded to get the key bytes.

>>> key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
>>> sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='

A secret without the ``whsec_`` prefix is used as its UTF-8 bytes. (The
reference libraries base64-decode an unprefixed secret too; write secrets
shared with such receivers with their ``whsec_`` prefix.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

__all__ = ["SECRET_PREFIX", "secret_key", "sign"]

SECRET_PREFIX = "whsec_"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a secret; ``ValueError`` (never showing the secret) if it is unusable."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret[len(SECRET_PREFIX) :]
        try:
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("a whsec_ secret must be whsec_ followed by base64") from None
    else:
        key = secret.encode("utf-8")
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def sign(key: bytes, webhook_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``webhook-signature`` header value of one delivery."""
    content = f"{webhook_id}.{timestamp_s}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode("ascii")
