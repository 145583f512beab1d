"""The one place that knows the wire: requests built from ``protocol.CALLS``, answers parsed,
errors turned into ``UCloudError``, access tokens refreshed.

It does no I/O. A call is a generator (``exchange``) that yields ``HttpRequest``s and receives
``HttpResponse``s; the sync client drives it with ``requests``, the async one with aiohttp, so
both flavours share every decision (headers, retry after 401/403, token refresh, parsing).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import jwt
from pydantic import BaseModel, ValidationError

from ..protocol import CALLS, Call, RefreshResponse, encode_query, to_wire
from .errors import UCloudConnectionError, UCloudError, UCloudTimeoutError, redact

__all__ = [
    "ApiTokenAuth",
    "Auth",
    "Endpoint",
    "Exchange",
    "HttpRequest",
    "HttpResponse",
    "JupyterTokenAuth",
    "Prepared",
    "RefreshTokenAuth",
    "build_request",
    "parse_response",
]

T = TypeVar("T")

#: Refresh the access token when less than this many seconds are left (as UCloud's Go client).
REFRESH_MARGIN_S = 180.0
#: UCloud's ``util.HttpError`` bodies are small; anything beyond this is not one.
_MAX_WHY = 500


@dataclass(frozen=True)
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    call: str
    target: str  #: who answers, for messages ("UCloud at http://...")

    def __repr__(self) -> str:  # headers hold credentials
        return f"HttpRequest({self.method} {self.url.split('?')[0]}, call={self.call})"


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    content_type: str = ""


@dataclass(frozen=True)
class Endpoint:
    """Where calls go: UCloud itself (``prefix=""``) or a Jupyter server's proxy (``"/ucloud"``)."""

    base_url: str
    prefix: str = ""

    @property
    def is_proxy(self) -> bool:
        return bool(self.prefix)

    def url(self, path: str, query: dict[str, str] | None = None) -> str:
        url = self.base_url.rstrip("/") + self.prefix + path
        return f"{url}?{urlencode(query)}" if query else url

    def describe(self) -> str:
        what = "the Jupyter server" if self.is_proxy else "UCloud"
        return f"{what} at {self.base_url.rstrip('/')}"


@dataclass(frozen=True)
class Prepared(Generic[T]):
    """A call ready to send: the call, its query or JSON body, and how to read the answer."""

    call: Call
    query: dict[str, str] | None = None
    body: Any = None
    parse: Callable[[Any], T] = field(default=lambda value: value)  # type: ignore[assignment]
    #: For a proxy that only passes the answer on (``T`` is ``bytes``): a 2xx answer declared
    #: as UTF-8 JSON is the result as the bytes that came, neither parsed nor ``parse``d; any
    #: other 2xx answer is parsed as usual and ``parse`` makes it bytes.
    relay: bool = False

    @classmethod
    def of(
        cls,
        name: str,
        request: BaseModel | None = None,
        parse: Callable[[Any], T] | None = None,
    ) -> Prepared[T]:
        """Prepare ``CALLS[name]`` with ``request`` (query-encoded or JSON, as the call says)."""
        call = CALLS[name]
        query = body = None
        if request is not None:
            if call.encoding == "query":
                query = encode_query(request)
            else:
                body = to_wire(request)
        response = call.response

        def default_parse(value: Any) -> Any:
            return response.model_validate(value) if response is not None else value

        return cls(call, query, body, parse or default_parse)


# --- authentication -------------------------------------------------------------------------


class Auth:
    """How requests are authorised. ``authorization`` may yield requests (a token refresh)."""

    #: Whether a 401/403 is worth one retry after ``authorization(force=True)``.
    refreshable = False
    username: str | None = None

    def authorization(
        self, endpoint: Endpoint, force: bool
    ) -> Generator[HttpRequest, HttpResponse, str | None]:
        return None
        yield  # pragma: no cover - makes this a generator

    def secrets(self) -> list[str]:
        return []


class ApiTokenAuth(Auth):
    """An API token (``uc<id>-<secret>``), used directly as the bearer; it cannot be refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def authorization(
        self, endpoint: Endpoint, force: bool
    ) -> Generator[HttpRequest, HttpResponse, str | None]:
        return f"Bearer {self._token}"
        yield  # pragma: no cover

    def secrets(self) -> list[str]:
        return [self._token]


class JupyterTokenAuth(Auth):
    """A Jupyter server's token (``Authorization: token ...``); ``None`` when auth is off."""

    def __init__(self, token: str | None) -> None:
        self._token = token or None

    def authorization(
        self, endpoint: Endpoint, force: bool
    ) -> Generator[HttpRequest, HttpResponse, str | None]:
        return f"token {self._token}" if self._token else None
        yield  # pragma: no cover

    def secrets(self) -> list[str]:
        return [self._token] if self._token else []


def token_expiry(access_token: str) -> float | None:
    """The ``exp`` claim of a JWT (read without verifying the signature), or ``None``."""
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, (int, float)) else None


def token_subject(access_token: str) -> str | None:
    try:
        claims = jwt.decode(access_token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    sub = claims.get("sub")
    return sub if isinstance(sub, str) else None


class RefreshTokenAuth(Auth):
    """A refresh token: ``POST /auth/refresh`` gives a short-lived JWT, renewed when under
    ``REFRESH_MARGIN_S`` seconds remain (``exp`` read without verification) or after a 401/403."""

    refreshable = True

    def __init__(self, refresh_token: str, clock: Callable[[], float] = time.time) -> None:
        self._refresh_token = refresh_token
        self._access_token: str | None = None
        self._expires_at: float | None = None
        self._clock = clock
        self.refresh_count = 0

    def needs_refresh(self) -> bool:
        if self._access_token is None:
            return True
        if self._expires_at is None:  # unknown lifetime: use it until it is refused
            return False
        return self._expires_at - self._clock() < REFRESH_MARGIN_S

    @property
    def expires_at(self) -> float | None:
        return self._expires_at

    def authorization(
        self, endpoint: Endpoint, force: bool
    ) -> Generator[HttpRequest, HttpResponse, str | None]:
        if force or self.needs_refresh():
            prepared: Prepared[RefreshResponse] = Prepared.of("auth.refresh")
            request = build_request(endpoint, prepared, f"Bearer {self._refresh_token}", None)
            response = yield request
            if response.status in (401, 403):
                raise UCloudError(
                    "the refresh token was refused (unknown, expired or revoked): "
                    "configure a valid one",
                    status=response.status,
                    call="auth.refresh",
                )
            tokens = parse_response(prepared, response, request)
            self._access_token = tokens.access_token
            self._expires_at = token_expiry(tokens.access_token)
            self.username = token_subject(tokens.access_token) or self.username
            self.refresh_count += 1
        return f"Bearer {self._access_token}"

    def secrets(self) -> list[str]:
        return [s for s in (self._refresh_token, self._access_token) if s]


# --- requests and answers ---------------------------------------------------------------------


def build_request(
    endpoint: Endpoint, prepared: Prepared[Any], authorization: str | None, project: str | None
) -> HttpRequest:
    """The HTTP request of ``prepared``, with the headers UCloud's web client sends."""
    call = prepared.call
    headers = {"Accept": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    if project and not endpoint.is_proxy:
        headers["Project"] = project
    body: bytes | None = None
    if prepared.body is not None:
        headers["Content-Type"] = "application/json; charset=utf-8"
        body = json.dumps(prepared.body).encode("utf-8")
    elif call.method in ("POST", "PUT"):
        body = b""
    return HttpRequest(
        method=call.method,
        url=endpoint.url(call.path, prepared.query),
        headers=headers,
        body=body,
        call=call.name,
        target=endpoint.describe(),
    )


def error_from_response(response: HttpResponse, request: HttpRequest) -> UCloudError:
    """A ``UCloudError`` from an error answer: UCloud's ``{statusCode, why, errorCode}``, a
    Jupyter error ``{message, reason}``, or plain text (Go's ``404 page not found``)."""
    text = response.body.decode("utf-8", "replace").strip()
    why, code = "", None
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        why = str(data.get("why") or data.get("message") or data.get("reason") or "")
        code = data.get("errorCode") if isinstance(data.get("errorCode"), str) else None
    elif text and not text.lstrip().startswith("<"):
        why = text
    if not why:
        why = _STATUS_TEXT.get(response.status, "Request failed")
    if len(why) > _MAX_WHY:
        why = why[:_MAX_WHY] + "..."
    return UCloudError(why, status=response.status, error_code=code, call=request.call)


_STATUS_TEXT = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


def parse_response(prepared: Prepared[T], response: HttpResponse, request: HttpRequest) -> T:
    """The typed result of a 2xx answer, or the ``UCloudError`` of any other."""
    if not 200 <= response.status < 300:
        raise error_from_response(response, request)
    if prepared.relay and _is_utf8_json(response.content_type) and response.body.strip():
        return response.body  # type: ignore[return-value]  # T is bytes (see ``relay``)
    try:
        value = json.loads(response.body) if response.body.strip() else None
        return prepared.parse(value)
    except (ValueError, ValidationError, TypeError, KeyError, IndexError) as err:
        detail = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UCloudError(
            f"unexpected answer from {request.target}: {detail}",
            status=response.status,
            call=request.call,
        ) from None


def _is_utf8_json(content_type: str) -> bool:
    """Whether ``content_type`` is JSON in UTF-8 (``application/json``, no other charset)."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "application/json":
        return False
    charset = params.strip().lower().replace(" ", "")
    return charset in ("", "charset=utf-8", 'charset="utf-8"')


def connection_error(request: HttpRequest, detail: str, secrets: list[str]) -> UCloudError:
    return UCloudConnectionError(
        f"cannot reach {request.target}: {redact(detail, secrets)}", call=request.call
    )


def timeout_error(request: HttpRequest, timeout: float) -> UCloudError:
    return UCloudTimeoutError(
        f"{request.target} did not answer within {timeout:g} s", call=request.call
    )


class Exchange:
    """What both flavours share: endpoint, credentials, project, and the call logic."""

    def __init__(self, endpoint: Endpoint, auth: Auth, project: str | None = None) -> None:
        self.endpoint = endpoint
        self.auth = auth
        self.project = project

    def run(self, prepared: Prepared[T]) -> Generator[HttpRequest, HttpResponse, T]:
        """Send ``prepared`` (after a token refresh if due); once more after a 401/403 if the
        credentials can be refreshed."""
        for attempt in (0, 1):
            authorization = yield from self.auth.authorization(self.endpoint, force=attempt > 0)
            request = build_request(self.endpoint, prepared, authorization, self.project)
            response = yield request
            if response.status in (401, 403) and attempt == 0 and self.auth.refreshable:
                continue
            return parse_response(prepared, response, request)
        raise AssertionError("unreachable")  # pragma: no cover

    def bearer(self, force: bool = False) -> Generator[HttpRequest, HttpResponse, str | None]:
        """The bearer token for a websocket that carries it in a frame (``jobs.follow``): the
        access token (refreshed first if due, or if ``force``), or the API token."""
        authorization = yield from self.auth.authorization(self.endpoint, force)
        scheme, _, token = (authorization or "").partition(" ")
        return token if scheme == "Bearer" and token else None

    def websocket_url(self, path: str) -> str:
        """``ws(s)://`` URL of ``path`` where calls go (UCloud, or the Jupyter server)."""
        base = self.endpoint.base_url.rstrip("/")
        if base.startswith("https://"):
            base = "wss://" + base[len("https://") :]
        elif base.startswith("http://"):
            base = "ws://" + base[len("http://") :]
        return base + path

    def websocket_headers(self) -> dict[str, str]:
        """Headers for a websocket to the Jupyter server (its token; nothing to refresh)."""
        calls = self.auth.authorization(self.endpoint, False)
        try:
            next(calls)
        except StopIteration as done:
            return {"Authorization": done.value} if done.value else {}
        raise UCloudError("websocket headers need no token refresh")  # pragma: no cover

    def secrets(self) -> list[str]:
        return self.auth.secrets()
