"""Keep credentials that travel in URLs and frames out of every log line of this process.

Provider shell session identifiers travel in the provider websocket's query
(``?session=<id>``) and Jupyter tokens may travel in ``?token=``; tornado writes a request's
whole URI into some of its warnings (``tornado.general``: "400 GET /ucloud/local/websocket?
session=... (ip): Invalid unicode in usernameHint") and into the ``repr`` of a request in
tracebacks (``tornado.application``), and a traceback may quote a URL or a frame too.

``install()`` replaces logging's record factory (``logging.setLogRecordFactory``) with one that
formats each record's message as soon as the record is made, redacts it, and keeps the result
as the record's message; a record's traceback (``exc_info``) and ``stack_info`` are formatted
and redacted into ``exc_text``/``stack_info`` the same way (formatters print ``exc_text`` when
it is set). A record factory is the one place every record passes through: records of every
logger (tornado's ``tornado.access``, ``tornado.general``, ``tornado.application``,
``tornado.websocket``, the websockets library's, loggers created later) reach every handler
(the Jupyter server's own, pytest's, handlers added later) already redacted. A filter would
have to be attached to each handler that exists, and a formatter wrapper to each formatter.
Only records made by ``logging.makeLogRecord`` (records unpickled from another process) bypass
it; neither server uses that.

What is redacted (the value is replaced by ``[redacted]``, see ``redact``), for the names
``session``, ``sessionIdentifier``/``session_identifier``, ``bearer`` and any name ending in
``token`` (``token``, ``access_token``, ``refreshToken``, ...), in any letter case:

- URL query parameters and ``name=value`` pairs (``?session=<id>``, ``token='...'``), also
  percent-encoded (``session%3D...`` in a URL inside another URL's query); the value runs to
  the next ``&`` (or ``%26``), whitespace, quote or the end;
- quoted fields of JSON or Python reprs (``"sessionIdentifier": "<id>"``, UCloud's envelope
  ``"bearer"``, ``{'refresh_token': '...'}`` in a config dump);
- ``Bearer <token>`` (an ``Authorization`` header).

This module imports nothing of the project's, so both servers (``local`` and ``server``) use it.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from typing import Any

__all__ = ["MARKER", "install", "installed", "redact", "redact_record"]

#: What a redacted value is replaced with.
MARKER = "[redacted]"

_NAMES = r"(?:session|session_?identifier|bearer|[A-Za-z0-9_-]*token)"
_QUERY = re.compile(
    # a whole parameter name (not the end of a longer one), also after an encoded ? or &
    r"(?:(?<=%3F)|(?<=%26)|(?<![A-Za-z0-9_.~%-]))"
    rf"({_NAMES}(?:=|%3D)[\"']?)"
    r"(?:(?!%26)[^&\s'\"])+",
    re.IGNORECASE,
)
_FIELD = re.compile(rf"""([\"']{_NAMES}[\"']\s*:\s*[\"'])[^\"']+([\"'])""", re.IGNORECASE)
_BEARER = re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]+")

_FACTORY_FLAG = "_jupyter_ucloud_redacts"
_formatter = logging.Formatter()


def redact(text: str) -> str:
    """``text`` with the credentials listed in the module docstring replaced by ``[redacted]``."""
    if "=" in text or "%3" in text:
        text = _QUERY.sub(rf"\1{MARKER}", text)
    if '"' in text or "'" in text:
        text = _FIELD.sub(rf"\1{MARKER}\2", text)
    if "Bearer" in text:
        text = _BEARER.sub(rf"\1{MARKER}", text)
    return text


def redact_record(record: logging.LogRecord) -> None:
    """Redact ``record`` in place: its message (formatted now, then kept as ``msg`` without
    ``args``), its traceback (into ``exc_text``) and its ``stack_info``."""
    try:
        message = record.getMessage()
    except Exception:  # a broken logging call: the handler reports it as logging does
        return
    clean = redact(message)
    if record.args or clean != message:
        record.msg, record.args = clean, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(_formatter.formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


def installed() -> bool:
    """Whether this process's log records are redacted."""
    return bool(getattr(logging.getLogRecordFactory(), _FACTORY_FLAG, False))


def install(keep_from: Iterable[str] = ()) -> None:
    """Redact every log record this process makes from now on (idempotent: the first call's
    ``keep_from`` stays; wraps whatever record factory is in place).

    ``keep_from``: source files (path endings such as ``"jupyter_server/serverapp.py"``)
    whose records are left as they are, for messages that show a credential on purpose.
    """
    if installed():
        return
    make = logging.getLogRecordFactory()
    keep = tuple(path.replace(os.sep, "/") for path in keep_from)

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if not (keep and record.pathname.replace(os.sep, "/").endswith(keep)):
            redact_record(record)
        return record

    setattr(redacting_factory, _FACTORY_FLAG, True)
    logging.setLogRecordFactory(redacting_factory)
