"""Silences created at run time (the gateway's ``/api/v2/silences``), persisted in one JSON file.

The store is ``SPOOL/config/silences.json`` of the ``type: gateway`` integration (beside the webhook
registrations, ``SPOOL/config/webhooks.json``): the gateway process writes it, the live runner reads it when
it plans a cycle. Both processes know the spool from the config file; neither knows the other's
``--output``. Writes take an exclusive ``fcntl`` lock on ``silences.json.lock`` and replace the file
atomically (temporary file, fsync, ``os.replace``); readers never see a half-written file.

A silence has the shape of Alertmanager API v2: ``id``, ``matchers`` (``{name, value, isRegex, isEqual}``:
``=``, ``!=``, ``=~``, ``!~``), ``startsAt``, ``endsAt``, ``createdBy``, ``comment``, ``updatedAt``; its
``status.state`` (``pending``, ``active``, ``expired``) follows from the time. Expiring one sets ``endsAt``
to now, as Alertmanager does: it stays in the list, expired. A silence covers an alert whose time
(event time, epoch ms) is in ``[startsAt, endsAt)`` and whose labels (plus ``rule``, ``severity``,
``source``) satisfy every matcher; a label the alert lacks matches as the empty string (Alertmanager's rule).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field, model_validator

from airis_mon.files import write_text_atomically
from airis_mon.models import StrictModel
from airis_mon.timeutil import ms_to_iso, to_epoch_ms

__all__ = [
    "SILENCES_FILE",
    "EpochMs",
    "SilenceMatcher",
    "SilenceStore",
    "StoredSilence",
    "Text",
    "config_matchers",
    "format_matcher",
    "matcher_key",
    "parse_matcher",
    "silence_status",
    "store_path",
]

#: Where a gateway's silences are kept, relative to its spool folder.
SILENCES_FILE = Path("config") / "silences.json"
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$", re.DOTALL)
EpochMs = Annotated[int, BeforeValidator(to_epoch_ms)]  # numbers by magnitude (s/ms/µs/ns), ISO-8601 strings


def _exact_ms(value: object) -> int:
    """An integer is epoch ms as it is (the store's own form); anything else as :func:`to_epoch_ms` reads it."""
    return value if isinstance(value, int) and not isinstance(value, bool) else to_epoch_ms(value)


StoredMs = Annotated[int, BeforeValidator(_exact_ms)]


def _unicode(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode (a lone surrogate)") from None
    return text


Text = Annotated[str, AfterValidator(_unicode)]


class SilenceMatcher(StrictModel):
    """One Alertmanager matcher: label ``name``, ``value`` (a whole-value regex when ``isRegex``), and
    whether it must hold (``isEqual``, default) or must not."""

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)

    name: str = Field(min_length=1, max_length=256, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: Text = Field(max_length=4096)
    is_regex: bool = Field(default=False, alias="isRegex")
    is_equal: bool = Field(default=True, alias="isEqual")

    @model_validator(mode="after")
    def _regex_compiles(self) -> SilenceMatcher:
        if self.is_regex:
            try:
                re.compile(self.value)
            except re.error as error:
                raise ValueError(f"invalid regular expression: {error}") from None
        return self

    def holds(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is the empty string)."""
        value = labels.get(self.name, "")
        found = bool(re.fullmatch(self.value, value)) if self.is_regex else value == self.value
        return found == self.is_equal

    def api(self) -> dict:
        """The matcher in API v2 shape."""
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}


class StoredSilence(StrictModel):
    """A silence of the store (API v2 field names); times in epoch ms. Used where config silences are
    (:func:`transforms.rules.notify.silence` calls :meth:`silences`)."""

    model_config = ConfigDict(**StrictModel.model_config, populate_by_name=True)

    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=64)
    matchers: list[SilenceMatcher] = Field(min_length=1, max_length=64)
    starts_at: StoredMs = Field(alias="startsAt")
    ends_at: StoredMs = Field(alias="endsAt")
    created_by: Text = Field(alias="createdBy", min_length=1, max_length=256)
    comment: Text = Field(min_length=1, max_length=4096)
    updated_at: StoredMs = Field(default=0, alias="updatedAt")

    @model_validator(mode="after")
    def _ordered(self) -> StoredSilence:
        if self.ends_at < self.starts_at:  # equal: an expired pending silence (the API asks for endsAt > startsAt)
            raise ValueError("endsAt must be after startsAt")
        return self

    @property
    def name(self) -> str:
        """The id (config silences have a name; counters and logs use either)."""
        return self.id

    def silences(self, labels: Mapping[str, str], at_ms: int) -> bool:
        """Whether this silence covers an alert with ``labels`` at ``at_ms`` (epoch ms)."""
        return self.starts_at <= at_ms < self.ends_at and all(m.holds(labels) for m in self.matchers)

    def api(self, now_ms: int) -> dict:
        """The silence as API v2 answers it (``GettableSilence``), its status as of ``now_ms``."""
        return {
            "id": self.id,
            "matchers": [m.api() for m in self.matchers],
            "startsAt": ms_to_iso(self.starts_at),
            "endsAt": ms_to_iso(self.ends_at),
            "createdBy": self.created_by,
            "comment": self.comment,
            "updatedAt": ms_to_iso(self.updated_at),
            "status": {"state": silence_status(self, now_ms)},
        }


def silence_status(silence: StoredSilence, now_ms: int) -> Literal["pending", "active", "expired"]:
    """``pending`` before ``startsAt``, ``active`` until ``endsAt``, then ``expired`` (``now_ms``: epoch ms)."""
    if now_ms < silence.starts_at:
        return "pending"
    return "active" if now_ms < silence.ends_at else "expired"


def parse_matcher(text: str) -> SilenceMatcher:
    """An Alertmanager matcher string (``name=value``, ``name!=value``, ``name=~re``, ``name!~re``; the
    value may be double-quoted) as a :class:`SilenceMatcher`; ``ValueError`` when it is none."""
    found = _MATCHER.match(text)
    if not found:
        raise ValueError(f"not a matcher (name=value, name!=value, name=~regex, name!~regex): {text!r}")
    name, operator, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = json.loads(value)
    return SilenceMatcher(name=name, value=value, isRegex="~" in operator, isEqual=operator[0] == "=")


def matcher_key(text: str) -> tuple[str, str, str]:
    """``(name, operator, value)`` of a matcher string, not validated further (a filter of silences is
    compared, never compiled); ``ValueError`` when it is no matcher."""
    found = _MATCHER.match(text)
    if not found:
        raise ValueError("not a matcher")
    name, operator, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        with contextlib.suppress(ValueError):
            value = json.loads(value)
    return name, operator, value


def format_matcher(matcher: SilenceMatcher) -> str:
    """The matcher as Alertmanager writes it, e.g. ``severity=~"high|critical"``."""
    operator = ("=" if matcher.is_equal else "!") + ("~" if matcher.is_regex else ("" if matcher.is_equal else "="))
    return f"{matcher.name}{operator}{json.dumps(matcher.value)}"


def config_matchers(matchers: Mapping[str, object]) -> list[SilenceMatcher]:
    """The config file's matcher form (``{label: value}`` or ``{label: {regex: ...}}``) as matchers."""
    out = []
    for name, matcher in matchers.items():
        regex = getattr(matcher, "regex", None)
        if regex is None and isinstance(matcher, Mapping):
            regex = matcher.get("regex")
        out.append(
            SilenceMatcher(name=name, value=regex if regex is not None else str(matcher), isRegex=regex is not None)
        )
    return out


def store_path(spool: str | Path) -> Path:
    """The silences file of the gateway whose spool folder is ``spool``."""
    return Path(spool) / SILENCES_FILE


class SilenceStore:
    """The silences in ``path`` (see the module docstring); safe across processes and threads."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _read(self) -> dict[str, StoredSilence]:
        if not self.path.exists():
            return {}
        entries = json.loads(self.path.read_text(encoding="utf-8"))
        return {entry["id"]: StoredSilence.model_validate(entry) for entry in entries}

    def _write(self, silences: dict[str, StoredSilence]) -> None:
        entries = [s.model_dump(by_alias=True) for s in sorted(silences.values(), key=lambda s: (s.starts_at, s.id))]
        write_text_atomically(self.path, json.dumps(entries, sort_keys=True, indent=1))

    def all(self) -> list[StoredSilence]:
        """Every silence, expired ones included, by start time."""
        return sorted(self._read().values(), key=lambda s: (s.starts_at, s.id))

    def get(self, silence_id: str) -> StoredSilence | None:
        """The silence with ``silence_id``, or None."""
        return self._read().get(silence_id)

    def put(self, silence: StoredSilence, now_ms: int) -> StoredSilence:
        """Store ``silence`` (a new one, or a replacement of the one with its id), ``updatedAt`` = ``now_ms``."""
        stored = silence.model_copy(update={"updated_at": now_ms})
        with self._locked():
            silences = self._read()
            silences[stored.id] = stored
            self._write(silences)
        return stored

    def expire(self, silence_id: str, now_ms: int) -> StoredSilence | None:
        """End the silence now (``endsAt`` = ``now_ms``, or its start when it is still pending): it stays
        listed, ``expired``. None when there is no such silence; an expired one is left as it is."""
        with self._locked():
            silences = self._read()
            silence = silences.get(silence_id)
            if silence is None or silence_status(silence, now_ms) == "expired":
                return silence
            update = {"ends_at": now_ms, "updated_at": now_ms}
            if silence.starts_at > now_ms:  # pending: an empty interval, it never applies
                update["starts_at"] = now_ms
            silences[silence_id] = silence.model_copy(update=update)
            self._write(silences)
            return silences[silence_id]
