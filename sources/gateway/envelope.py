"""One spool line: the payloads of one accepted request, with its ack id.

::

    {"ack": "000042-1f3a0", "received_ms": 1795824000123, "token": "ci", "key": "idem:ci:7c1e...",
     "digest": "9f86d0...", "payloads": [{"timestamp": ..., "source": ..., "metrics": [...]}]}

- ``ack``: the id the 2xx answer carried (``<segment sequence>-<byte offset of the line, hex>``), so a
  client can look its data up (``GET /api/v1/ingest/{ack}``) and a dead letter can name it.
- ``received_ms``: when the gateway accepted the request (epoch ms).
- ``token``: the name of the Bearer token (or ``mlflow`` / ``github`` for signed webhooks); never the token.
- ``key``, ``digest``: only on requests that carry an ``Idempotency-Key`` or a webhook delivery id: the key
  (namespaced) and the SHA-256 of the body, remembered for ``dedup_window_s`` so that a repeat is recognised.
- ``payloads``: the records, each a payload of the public contract (:mod:`airis_mon.contract`).

One line per request makes a request atomic: a crash cuts a torn last line, which was never acknowledged.
Spools written before this format hold bare payloads, one a line; :func:`payloads_of` reads both.
Beam-free: the gateway writes these lines, the pipeline's parser reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = ["SpoolEntry", "encode_line", "is_envelope", "keyed_prefix", "payloads_of"]


@dataclass(frozen=True)
class SpoolEntry:
    """What a request stores: ``payloads`` as compact JSON documents (bytes without newlines), who sent it,
    and its dedup ``key`` and body ``digest`` (both or neither)."""

    payloads: tuple[bytes, ...]
    token: str | None = None
    key: str | None = None
    digest: str | None = None


def _text(value: str) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode("ascii")


def encode_line(entry: SpoolEntry, ack: str, received_ms: int) -> bytes:
    """The spool line (newline included) of ``entry`` acknowledged as ``ack`` at ``received_ms`` (epoch ms).
    The payload bytes are copied as they are (no re-serialising): they must be JSON without raw newlines."""
    parts = [b'{"ack":', _text(ack), b',"received_ms":', str(int(received_ms)).encode()]
    if entry.token is not None:
        parts += [b',"token":', _text(entry.token)]
    if entry.key is not None:
        parts += [b',"key":', _text(entry.key), b',"digest":', _text(entry.digest or "")]
    parts += [b',"payloads":[', b",".join(entry.payloads), b"]}\n"]
    return b"".join(parts)


def keyed_prefix(line: bytes) -> bool:
    """Whether a spool line may carry a dedup key (a cheap test before decoding it)."""
    return b',"key":' in line[:512]


def is_envelope(document: Any) -> bool:
    """Whether a decoded spool line is an envelope (not a bare payload of an older spool)."""
    return isinstance(document, dict) and "ack" in document and isinstance(document.get("payloads"), list)


def payloads_of(document: Any) -> tuple[list[Any], str | None]:
    """``(payloads, ack id)`` of a decoded spool line: an envelope's, or a bare payload as one (no ack)."""
    if is_envelope(document):
        return document["payloads"], str(document["ack"])
    return [document], None
