"""The provider's shell websocket (reference section 4): envelopes, payloads, URL.

Client -> provider text frames are ``ShellRequestEnvelope``; the first accepted payload must be
``initialize``. Provider -> client frames are ``ShellResponseEnvelope`` with ``type="message"``:
``initialize`` once on the initialize ``streamId``, ``data`` (all output) on that same
``streamId``, and ``ack`` for every later input/resize/initialize on that message's ``streamId``.

Parsing a frame with ``ShellRequestEnvelope.model_validate_json`` raises ``ValidationError`` both
for text that is not JSON and for JSON that is not a shell message. The IM closes the socket for
the first (and for a payload that is not a JSON object) and ignores unknown payload types; a
server that wants the same split checks ``json.loads`` first.
"""

from __future__ import annotations

import base64
from typing import Annotated, Literal
from urllib.parse import quote

from pydantic import Field, StrictInt

from .base import UCloudModel

#: The characters of ``input`` that interrupt what runs in a terminal (``^C``, ``^\``, ``^Z``).
#: The Jupyter bridge skips the stale output after one until its ack; the embedded provider
#: acks them so that this works (``local.shell_acks``, ``local.pty_packets``).
INTERRUPT_CHARS = ("\x03", "\x1c", "\x1a")

__all__ = [
    "INTERRUPT_CHARS",
    "ShellAck",
    "ShellData",
    "ShellInitialize",
    "ShellInitialized",
    "ShellInput",
    "ShellRequest",
    "ShellRequestEnvelope",
    "ShellResize",
    "ShellResponse",
    "ShellResponseEnvelope",
    "provider_websocket_url",
    "shell_call_name",
]


class ShellInitialize(UCloudModel):
    wire_always = ("type",)

    type: Literal["initialize"] = "initialize"
    session_identifier: str = Field(repr=False)
    cols: StrictInt
    rows: StrictInt


class ShellInput(UCloudModel):
    wire_always = ("type",)

    type: Literal["input"] = "input"
    data: str


class ShellResize(UCloudModel):
    wire_always = ("type",)

    type: Literal["resize"] = "resize"
    cols: StrictInt
    rows: StrictInt


ShellRequest = Annotated[ShellInitialize | ShellInput | ShellResize, Field(discriminator="type")]


class ShellRequestEnvelope(UCloudModel):
    """``{"call", "streamId", "payload", "project"?, "signedIntent"?, "bearer"?}``.

    The provider ignores everything but ``payload`` (and ``streamId`` for its answers)."""

    wire_always = ("call", "stream_id", "payload")

    call: str
    stream_id: str
    payload: ShellRequest
    project: str | None = None
    signed_intent: str | None = Field(default=None, repr=False)
    bearer: str | None = Field(default=None, repr=False)


class ShellInitialized(UCloudModel):
    wire_always = ("type",)

    type: Literal["initialize"] = "initialize"


class ShellData(UCloudModel):
    wire_always = ("type", "data")

    type: Literal["data"] = "data"
    data: str


class ShellAck(UCloudModel):
    wire_always = ("type",)

    type: Literal["ack"] = "ack"


ShellResponse = Annotated[ShellInitialized | ShellData | ShellAck, Field(discriminator="type")]


class ShellResponseEnvelope(UCloudModel):
    """``{"type": "message", "payload", "streamId"}`` (field order as the IM writes it).

    ``status`` exists in the generic envelope (``omitempty``); the shell never sends it."""

    wire_always = ("type", "payload", "stream_id")

    type: Literal["message"] = "message"
    payload: ShellResponse
    stream_id: str
    status: StrictInt | None = None


def shell_call_name(provider_id: str) -> str:
    """The ``call`` the web client puts in every shell frame."""
    return f"jobs.compute.{provider_id}.shell.open"


_WS_SCHEMES = {"http://": "ws://", "https://": "wss://", "ws://": "ws://", "wss://": "wss://"}


def provider_websocket_url(
    provider_domain: str, provider_id: str, session_identifier: str, username: str
) -> str:
    """``{providerDomain}/ucloud/{providerId}/websocket?session=..&usernameHint=<base64>``.

    As UCloud's web client builds it: ``http`` becomes ``ws`` and ``https`` ``wss`` (a bare host,
    as in the seed, is taken as ``wss``); ``usernameHint`` is the standard-alphabet base64 of the
    UTF-8 username, not URL-encoded.
    """
    domain = provider_domain.strip().rstrip("/")
    lowered = domain.lower()
    for scheme, ws_scheme in _WS_SCHEMES.items():
        if lowered.startswith(scheme):
            domain = ws_scheme + domain[len(scheme) :]
            break
    else:
        domain = "wss://" + domain
    hint = base64.b64encode(username.encode("utf-8")).decode("ascii")
    session = quote(session_identifier, safe="-_.~")
    return (
        f"{domain}/ucloud/{quote(provider_id, safe='-_.~')}/websocket"
        f"?session={session}&usernameHint={hint}"
    )
