"""A loopback Microsoft Teams webhook that enforces the documented message rules.

Microsoft Learn ("Create incoming webhooks", "Send Adaptive Cards using an
Incoming Webhook"): the body is ``{"type": "message", "attachments": [...]}``
whose attachment has ``contentType`` ``application/vnd.microsoft.card.adaptive``
and ``content`` an Adaptive Card (``type`` ``AdaptiveCard``, a ``version``);
"The message size limit is 28 KB. When the size exceeds 28 KB, you receive an
error" (read as 28,000 bytes, the stricter reading): HTTP 413. Other errors:
400. Accepted: 202, as a Workflows webhook trigger answers.
"""

from __future__ import annotations

import json

from tests.sinks.receivers import Recorded

__all__ = ["MAX_BYTES", "card_errors", "teams_webhook"]

MAX_BYTES = 28_000
ADAPTIVE = "application/vnd.microsoft.card.adaptive"


def card_errors(message) -> list[str]:
    """Every rule ``message`` breaks (empty: Teams would accept it)."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return ['type must be "message"']
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["attachments must be a non-empty list"]
    errors = []
    for index, attachment in enumerate(attachments):
        where = f"attachments[{index}]"
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE:
            errors.append(f"{where}.contentType must be {ADAPTIVE}")
            continue
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            errors.append(f'{where}.content.type must be "AdaptiveCard"')
            continue
        if not isinstance(card.get("version"), str) or not card["version"]:
            errors.append(f"{where}.content.version is missing")
        if not isinstance(card.get("body", []), list):
            errors.append(f"{where}.content.body must be a list")
        for n, action in enumerate(card.get("actions", [])):
            url = str(action.get("url", ""))
            if action.get("type") == "Action.OpenUrl" and not url.startswith(("https://", "http://")):
                errors.append(f"{where}.content.actions[{n}]: Action.OpenUrl needs a url")
            if action.get("type") == "Action.Submit":
                errors.append(f"{where}.content.actions[{n}]: Action.Submit is not supported by webhooks")
    return errors


def teams_webhook(request: Recorded) -> tuple[int, dict[str, str], bytes]:
    """A ``Receiver`` responder answering as a Teams (Workflows) webhook does."""
    if len(request.body) > MAX_BYTES:
        return 413, {}, b"The payload is too large. Please make sure the size is less than 28KB."
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return 400, {}, b"Content-Type must be application/json"
    try:
        message = json.loads(request.body)
    except ValueError:
        return 400, {}, b"invalid JSON"
    errors = card_errors(message)
    if errors:
        return 400, {}, "; ".join(errors).encode()
    return 202, {}, b""
