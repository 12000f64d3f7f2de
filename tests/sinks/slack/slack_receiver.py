"""A loopback Slack incoming webhook that enforces Slack's documented rules.

- ``Content-Type`` must be ``application/json`` and the body a JSON object,
  else HTTP 400 ``invalid_payload``; neither ``text`` nor ``blocks``: 400 ``no_text``.
- Block Kit limits (docs.slack.dev/reference/block-kit): at most 50 blocks;
  header ``plain_text`` 1-150 characters; section text 1-3000 or 1-10 fields of
  1-2000; context 1-10 elements of at most 3000; actions 1-25 elements; button
  text ``plain_text`` 1-75, ``action_id`` at most 255 and unique in its block,
  ``url`` an absolute http(s) URL of at most 3000, ``value`` at most 2000.
  Any violation: 400 ``invalid_blocks``, as Slack answers.
- Otherwise 200 ``ok``.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from tests.sinks.receivers import Recorded

__all__ = ["block_kit_errors", "slack_webhook"]

_TEXT_TYPES = ("plain_text", "mrkdwn")


def _text_errors(where: str, obj, limit: int, types=_TEXT_TYPES) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in types or not isinstance(obj.get("text"), str):
        return [f"{where}: not a {'/'.join(types)} text object"]
    if not 1 <= len(obj["text"]) <= limit:
        return [f"{where}: text length {len(obj['text'])} not in 1..{limit}"]
    return []


def _button_errors(where: str, button) -> list[str]:
    if not isinstance(button, dict) or button.get("type") != "button":
        return [f"{where}: only buttons are expected here"]
    errors = _text_errors(f"{where}.text", button.get("text"), 75, ("plain_text",))
    if len(button.get("action_id", "")) > 255:
        errors.append(f"{where}.action_id longer than 255")
    if "url" in button:
        url = button["url"]
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 3000:
            errors.append(f"{where}.url invalid or longer than 3000")
    if len(button.get("value", "")) > 2000:
        errors.append(f"{where}.value longer than 2000")
    return errors


def block_kit_errors(payload: dict) -> list[str]:
    """Every Block Kit rule ``payload`` breaks (empty: Slack would accept it)."""
    blocks = payload.get("blocks", [])
    if not isinstance(blocks, list):
        return ["blocks is not a list"]
    errors = [] if len(blocks) <= 50 else [f"{len(blocks)} blocks > 50"]
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "header":
            errors += _text_errors(where, block.get("text"), 150, ("plain_text",))
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"{where}: a section needs text or fields")
            if "text" in block:
                errors += _text_errors(where, block["text"], 3000)
            if "fields" in block:
                fields = block["fields"]
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    errors.append(f"{where}: fields must be 1..10 text objects")
                else:
                    for n, field in enumerate(fields):
                        errors += _text_errors(f"{where}.fields[{n}]", field, 2000)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                errors.append(f"{where}: elements must be 1..10")
            else:
                for n, element in enumerate(elements):
                    errors += _text_errors(f"{where}.elements[{n}]", element, 3000)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                errors.append(f"{where}: elements must be 1..25")
            else:
                ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
                if len(ids) != len(set(ids)):
                    errors.append(f"{where}: duplicate action_id")
                for n, element in enumerate(elements):
                    errors += _button_errors(f"{where}.elements[{n}]", element)
        elif kind != "divider":
            errors.append(f"{where}: unexpected block type {kind!r}")
    return errors


def slack_webhook(request: Recorded) -> tuple[int, dict[str, str], bytes]:
    """A ``Receiver`` responder answering as a Slack incoming webhook does."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return 400, {}, b"invalid_payload"
    try:
        payload = json.loads(request.body)
    except ValueError:
        return 400, {}, b"invalid_payload"
    if not isinstance(payload, dict):
        return 400, {}, b"invalid_payload"
    if not payload.get("text") and not payload.get("blocks"):
        return 400, {}, b"no_text"
    if block_kit_errors(payload):
        return 400, {}, b"invalid_blocks"
    return 200, {"Content-Type": "text/html"}, b"ok"
