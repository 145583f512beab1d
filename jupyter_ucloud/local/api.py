"""HTTP handlers of the embedded server: ``/auth/refresh`` (and ``/auth/refresh/web``), the Jobs
API routed from ``CALLS``, the application browser and ``products.v2`` (browse, retrieve).

As UCloud's Go server does it (reference section 1): JSON error bodies ``{statusCode, why,
errorCode, detailedCode}``; 403 ``Forbidden`` for a missing, forged or expired bearer; 400
``Invalid request supplied`` / ``No request body found`` for bad input; and for an unknown path
or a wrong method a plain-text ``404 page not found`` (Go's ``http.NotFound``), never a 405.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from pydantic import ValidationError
from tornado.http1connection import HTTP1Connection
from tornado.web import RequestHandler, stream_request_body

from ..protocol import (
    CALLS,
    Call,
    ComputeProduct,
    ErrorBody,
    PageV2,
    ProductsBrowseRequest,
    RefreshResponse,
    decode_query,
    to_wire,
)
from .auth import Principal
from .backends.base import BackendError
from .errors import ApiError
from .jobs import normalise_items_per_page
from .store import parse_id

if TYPE_CHECKING:
    from .auth import TokenAuthority
    from .catalog import Catalog
    from .config import LocalConfig
    from .jobs import JobService

__all__ = ["ApiServer", "api_routes"]

log = logging.getLogger("jupyter_ucloud.local")

MAX_BULK_ITEMS = 1000
#: tornado's body cap for the API's streamed bodies; the real limit is ``max_body_bytes``.
STREAMING_BODY_CAP = 2**62
#: A body over the limit is read and dropped up to this many bytes before the 413 goes out: most
#: clients (requests, browsers' fetch) send their whole body before they read, and a connection
#: closed under their upload resets and loses the answer. Beyond it, the 413 goes out at once.
REFUSED_BODY_DRAIN = 16 * 1024 * 1024


class ApiServer(Protocol):
    """What the API handlers need of the running server (``server.LocalServer`` fits)."""

    url: str  # where it listens (``http://host:port``)
    config: LocalConfig
    authority: TokenAuthority
    jobs: JobService
    catalog: Catalog


class _Handler(RequestHandler):
    server: ApiServer

    def initialize(self, server: ApiServer) -> None:
        self.server = server

    def send_json(self, status: int, body: Any) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body, separators=(",", ":")))

    def send_api_error(self, error: ApiError) -> None:
        body = ErrorBody(status_code=error.status, why=error.why, error_code=error.error_code)
        self.send_json(error.status, body.to_wire())

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # Only reached for exceptions that escaped a handler: answer as Go's panic handler does.
        why = "Internal server error" if status_code >= 500 else "Invalid request supplied"
        self.send_api_error(ApiError(status_code, why))

    def send_not_found(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish("404 page not found\n")

    def bearer(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        return header[len("Bearer ") :].strip()


@stream_request_body
class NotFoundHandler(_Handler):
    """Every unknown path and every method: ``404 page not found`` as plain text.

    Streamed so that the answer goes out without reading a body first."""

    def prepare(self) -> None:
        self.send_not_found()

    def data_received(self, chunk: bytes) -> None:
        pass  # not reached: prepare() has answered and the connection closes


@stream_request_body
class CallHandler(_Handler):
    """One UCloud path; dispatches by method to the implementation of its call.

    The body is streamed and never held beyond ``max_body_bytes``: one larger than that is
    refused with 413 once it has been read and dropped (so that the client, still sending,
    reads the answer), or at once when its ``Content-Length`` or the bytes received so far pass
    ``REFUSED_BODY_DRAIN`` (tornado then closes the connection)."""

    def initialize(self, server: ApiServer, calls: dict[str, Call]) -> None:  # type: ignore[override]
        super().initialize(server)
        self.calls = calls
        self._body = bytearray()
        self._dropping: int | None = None  # bytes of a refused body read so far

    def prepare(self) -> None:
        limit = self.server.config.max_body_bytes
        connection = self.request.connection
        if isinstance(connection, HTTP1Connection):
            # tornado's own cap answers a bare 400 when a chunk header passes it; the limit
            # is enforced here instead (data_received), with a 413 in UCloud's shape.
            connection.set_max_body_size(STREAMING_BODY_CAP)
        length = self.request.headers.get("Content-Length", "").strip()
        if length.isascii() and length.isdigit():
            declared = int(length) if len(length) <= 18 else None  # None: absurdly long
            if declared is None or declared > REFUSED_BODY_DRAIN:
                self._refuse_too_big()
            elif declared > limit:
                self._dropping = 0

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        if (
            self._dropping is None
            and len(self._body) + len(chunk) > self.server.config.max_body_bytes
        ):
            self._dropping = len(self._body)
            self._body = bytearray()
        if self._dropping is not None:
            self._dropping += len(chunk)
            if self._dropping > REFUSED_BODY_DRAIN:
                self._refuse_too_big()
            return
        self._body += chunk

    def _refuse_too_big(self) -> None:
        limit = self.server.config.max_body_bytes
        log.info(
            "refused a request body over %d bytes (%s %s)",
            limit,
            self.request.method,
            self.request.path,
        )
        self.send_api_error(ApiError(413, f"Request body too large (at most {limit} bytes)"))

    async def get(self, *args: str) -> None:
        await self._dispatch()

    async def post(self, *args: str) -> None:
        await self._dispatch()

    async def put(self, *args: str) -> None:
        await self._dispatch()

    async def delete(self, *args: str) -> None:
        await self._dispatch()

    async def patch(self, *args: str) -> None:
        await self._dispatch()

    async def head(self, *args: str) -> None:
        await self._dispatch()

    async def options(self, *args: str) -> None:
        await self._dispatch()

    async def _dispatch(self) -> None:
        if self._dropping is not None:  # the whole body came, and was dropped
            self._refuse_too_big()
            return
        call = self.calls.get(self.request.method or "")
        implementation = _IMPLEMENTATIONS.get(call.name) if call is not None else None
        if call is None or implementation is None:
            self.send_not_found()
            return
        try:
            result = await implementation(self, call)
        except ApiError as err:
            self.send_api_error(err)
            return
        except BackendError as err:
            self.send_api_error(ApiError(err.status, err.why, err.error_code))
            return
        self.send_json(200, to_wire(result))

    # --- request parsing ------------------------------------------------------------------

    def principal(self) -> Principal:
        token = self.bearer()
        who = self.server.authority.verify_bearer(token) if token else None
        if who is None:
            raise ApiError(403, "Forbidden")
        return who

    def workspace(self, who: Principal) -> str | None:
        """The project of the ``Project`` header (``None``: the personal workspace)."""
        project = self.request.headers.get("Project", "").strip()
        if not project:
            return None
        if who.username not in self.server.config.projects.get(project, []):
            raise ApiError(403, "Bad token supplied")
        return project

    def body(self, call: Call) -> Any:
        if not self._body.strip():
            raise ApiError(400, "No request body found")
        try:
            data = json.loads(self._body)
            parsed = call.request.model_validate(data) if call.request is not None else data
        except (ValueError, RecursionError, ValidationError):
            raise ApiError.invalid_request() from None
        items = getattr(parsed, "items", None)
        if call.bulk and isinstance(items, list) and len(items) > MAX_BULK_ITEMS:
            raise ApiError(400, f"Too many items in one request (at most {MAX_BULK_ITEMS})")
        return parsed

    def query(self, call: Call) -> Any:
        if call.request is None:
            return None
        try:
            return decode_query(call.request, self.request.query_arguments)
        except (ValueError, ValidationError):
            raise ApiError.invalid_request() from None


Implementation = Callable[[CallHandler, Call], Awaitable[Any]]


async def _refresh(h: CallHandler, call: Call) -> RefreshResponse:
    token = h.bearer()
    if token is None:
        raise ApiError(403, "Forbidden")
    tokens = h.server.authority.refresh(token)
    if tokens is None:
        raise ApiError(401, "Unauthorized")
    return RefreshResponse(access_token=tokens[0], csrf_token=tokens[1])


async def _retrieve_products(h: CallHandler, call: Call) -> Any:
    h.workspace(h.principal())
    return h.server.jobs.retrieve_products()


async def _browse(h: CallHandler, call: Call) -> Any:
    who = h.principal()
    project = h.workspace(who)
    return h.server.jobs.browse(who, project, h.query(call))


async def _retrieve(h: CallHandler, call: Call) -> Any:
    who = h.principal()
    h.workspace(who)
    return h.server.jobs.retrieve(who, h.query(call))


async def _create(h: CallHandler, call: Call) -> Any:
    who = h.principal()
    project = h.workspace(who)
    ids = await h.server.jobs.create(who, project, h.body(call).items)
    return {"responses": to_wire(ids)}


async def _terminate(h: CallHandler, call: Call) -> Any:
    who = h.principal()
    h.workspace(who)
    return {"responses": await h.server.jobs.terminate(who, h.body(call).items)}


async def _extend(h: CallHandler, call: Call) -> Any:
    who = h.principal()
    h.workspace(who)
    return {"responses": await h.server.jobs.extend(who, h.body(call).items)}


async def _open_interactive_session(h: CallHandler, call: Call) -> Any:
    who = h.principal()
    h.workspace(who)
    sessions = h.server.jobs.open_interactive_session(who, h.body(call).items)
    return {"responses": to_wire(sessions)}


async def _browse_applications(h: CallHandler, call: Call) -> Any:
    """``GET /api/hpc/apps/browse``: the applications, for the start-job dialog."""
    h.workspace(h.principal())
    params = h.request.query_arguments
    try:
        per_page_raw = params.get("itemsPerPage", [b""])[0].decode() or "0"
        offset_raw = params.get("next", [b""])[0].decode() or "0"
    except UnicodeDecodeError:
        raise ApiError.invalid_request() from None
    per_page = parse_id(per_page_raw.removeprefix("-"))
    offset = parse_id(offset_raw)
    if per_page is None or offset is None:
        raise ApiError.invalid_request()
    per_page = 50 if per_page == 0 or per_page_raw.startswith("-") else min(per_page, 1000)
    apps = h.server.catalog.applications()
    page = apps[offset : offset + per_page]
    items = [
        {
            "metadata": app.metadata.to_wire(),
            "invocation": {
                "applicationType": (app.invocation or {}).get("applicationType"),
                "parameters": (app.invocation or {}).get("parameters", []),
                "tool": (app.invocation or {}).get("tool"),
            },
        }
        for app in page
    ]
    more = offset + per_page < len(apps)
    return PageV2[dict[str, Any]](
        items=items, items_per_page=per_page, next=str(offset + per_page) if more else None
    )


#: Hosts (``host:port``) a browser page may call ``/auth/refresh/web`` from, besides this
#: server's own URL and ``public_url``: UCloud's web client in development.
WEB_CLIENT_HOSTS = ("localhost:9000",)


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


async def _refresh_web(h: CallHandler, call: Call) -> RefreshResponse:
    """``POST /auth/refresh/web`` (reference 2.2): the ``refreshToken`` cookie and the session's
    ``X-CSRFToken``, from a page of this server's own origin (``Origin``, else ``Referer``):
    403 ``Untrusted origin`` otherwise, 401 ``Unauthorized`` for a bad token pair."""
    origin = h.request.headers.get("Origin", "").strip()
    referer = h.request.headers.get("Referer", "").strip()
    host = _host_of(origin) if origin else _host_of(referer) if referer else ""
    trusted = {_host_of(h.server.url), *WEB_CLIENT_HOSTS}
    if h.server.config.public_url:
        trusted.add(_host_of(h.server.config.public_url))
    if not host or host not in trusted:
        raise ApiError(403, "Untrusted origin")
    token = h.get_cookie("refreshToken") or ""
    csrf = h.request.headers.get("X-CSRFToken", "").strip()
    tokens = h.server.authority.refresh_web(token, csrf)
    if tokens is None:
        raise ApiError(401, "Unauthorized")
    return RefreshResponse(access_token=tokens[0], csrf_token=tokens[1])


def _product_key(product: ComputeProduct) -> tuple[str, str, str]:
    return (product.provider, product.category_name, product.name)


async def _browse_products(h: CallHandler, call: Call) -> PageV2[ComputeProduct]:
    """``GET /api/products/v2/browse`` (reference 5.3; public, as in the core): a page of
    products, walked by provider, category and name; ``next`` is ``provider@category@name``
    of the page's last product."""
    request: ProductsBrowseRequest = h.query(call)
    per_page = normalise_items_per_page(request.items_per_page)
    after: tuple[str, str, str] | None = None
    if request.next:
        parts = request.next.split("@", 2)
        if len(parts) != 3:
            raise ApiError.invalid_request()
        after = (parts[0], parts[1], parts[2])
    found = [
        product
        for product in h.server.catalog.products()
        if (request.filter_name is None or product.name == request.filter_name)
        and (request.filter_provider is None or product.provider == request.filter_provider)
        and (request.filter_category is None or product.category_name == request.filter_category)
        and (
            request.filter_product_type is None
            or product.product_type == request.filter_product_type
        )
        and (after is None or _product_key(product) > after)
    ]
    page = found[:per_page]
    more = len(found) > per_page
    next_token = "@".join(_product_key(page[-1])) if more else None
    return PageV2[ComputeProduct](items=page, items_per_page=per_page, next=next_token)


async def _retrieve_product(h: CallHandler, call: Call) -> ComputeProduct:
    """``GET /api/products/v2/retrieve?filterName=&filterCategory=&filterProvider=``."""
    request: ProductsBrowseRequest = h.query(call)
    if not (request.filter_name and request.filter_category and request.filter_provider):
        raise ApiError(400, "Name, category and provider must be supplied")
    wanted = (request.filter_provider, request.filter_category, request.filter_name)
    for product in h.server.catalog.products():
        if _product_key(product) == wanted:
            return product
    raise ApiError(404, "Unknown product")


APPS_BROWSE = Call("hpc.apps.browse", "GET", "/api/hpc/apps/browse", "query", None, None)
REFRESH_WEB = Call("auth.refreshWeb", "POST", "/auth/refresh/web", "none", None, RefreshResponse)
PRODUCTS_BROWSE = Call(
    "products.v2.browse",
    "GET",
    "/api/products/v2/browse",
    "query",
    ProductsBrowseRequest,
    PageV2[ComputeProduct],
)
PRODUCTS_RETRIEVE = Call(
    "products.v2.retrieve",
    "GET",
    "/api/products/v2/retrieve",
    "query",
    ProductsBrowseRequest,
    ComputeProduct,
)
#: Calls served here beyond ``CALLS``.
EXTRA_CALLS = (APPS_BROWSE, REFRESH_WEB, PRODUCTS_BROWSE, PRODUCTS_RETRIEVE)

_IMPLEMENTATIONS: dict[str, Implementation] = {
    "auth.refresh": _refresh,
    REFRESH_WEB.name: _refresh_web,
    PRODUCTS_BROWSE.name: _browse_products,
    PRODUCTS_RETRIEVE.name: _retrieve_product,
    "jobs.retrieveProducts": _retrieve_products,
    "jobs.browse": _browse,
    "jobs.retrieve": _retrieve,
    "jobs.create": _create,
    "jobs.terminate": _terminate,
    "jobs.extend": _extend,
    "jobs.openInteractiveSession": _open_interactive_session,
    APPS_BROWSE.name: _browse_applications,
}


def api_routes(server: ApiServer) -> list[tuple[str, type[RequestHandler], dict[str, Any]]]:
    """One route per path of ``CALLS`` and ``EXTRA_CALLS``, each with its calls by method."""
    by_path: dict[str, dict[str, Call]] = {}
    for call in [*CALLS.values(), *EXTRA_CALLS]:
        if call.name in _IMPLEMENTATIONS:
            by_path.setdefault(call.path, {})[call.method] = call
    missing = sorted(set(CALLS) - set(_IMPLEMENTATIONS))
    if missing:
        log.debug("calls without a local implementation: %s", ", ".join(missing))
    return [
        (path.rstrip("/") + "/?", CallHandler, {"server": server, "calls": calls})
        for path, calls in by_path.items()
    ]
