"""REST: the Jobs API proxy (UCloud's own paths and bodies), status, applications."""

from __future__ import annotations

import functools

from jupyter_server.auth.decorator import authorized
from pydantic import ValidationError
from tornado import web
from tornado.escape import parse_qs_bytes

from ...protocol import CALLS, Call, decode_query, encode_query
from ..errors import ProxyError
from .base import UCloudAPIHandler

__all__ = ["ApplicationsHandler", "JobsProxyHandler", "NotFoundHandler", "StatusHandler"]

#: The Jobs API calls the browser may make through the proxy: (method, operation) -> call.
PROXIED: dict[tuple[str, str], Call] = {
    ("GET", "retrieveProducts"): CALLS["jobs.retrieveProducts"],
    ("GET", "browse"): CALLS["jobs.browse"],
    ("GET", "retrieve"): CALLS["jobs.retrieve"],
    ("POST", ""): CALLS["jobs.create"],
    ("POST", "terminate"): CALLS["jobs.terminate"],
    ("POST", "extend"): CALLS["jobs.extend"],
}


def validation_message(call: Call, err: ValidationError) -> str:
    problems = []
    for problem in err.errors()[:5]:
        where = ".".join(str(part) for part in problem.get("loc", ())) or "body"
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    more = f" (and {err.error_count() - 5} more)" if err.error_count() > 5 else ""
    return f"Invalid request for {call.name}: " + "; ".join(problems) + more


#: Query strings up to this long have their checked and encoded form remembered.
_CACHED_QUERY_CHARS = 1024


def upstream_query(call: Call, query: str) -> dict[str, str]:
    """The query string of a proxied GET, checked against ``call``'s request model and encoded
    as UCloud's (``ValidationError`` or ``ValueError`` if it does not parse). The answer for a
    short query string is remembered: the panel asks the same ``browse`` again and again."""
    if len(query) <= _CACHED_QUERY_CHARS:
        return dict(_checked_query(call, query))
    return _check_query(call, query)


def _check_query(call: Call, query: str) -> dict[str, str]:
    assert call.request is not None
    # As tornado's ``query_arguments``; the model validation is what a request pays for.
    model = decode_query(call.request, parse_qs_bytes(query, keep_blank_values=True))
    return encode_query(model)


@functools.lru_cache(maxsize=256)
def _checked_query(call: Call, query: str) -> tuple[tuple[str, str], ...]:
    return tuple(_check_query(call, query).items())


class StatusHandler(UCloudAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json(await self.upstream.status())


class ApplicationsHandler(UCloudAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json({"items": await self.upstream.applications()})


class JobsProxyHandler(UCloudAPIHandler):
    """``/ucloud/api/jobs[/<operation>]`` -> UCloud's ``/api/jobs[/<operation>]``."""

    def _call(self, method: str, operation: str | None) -> Call:
        call = PROXIED.get((method, operation or ""))
        if call is not None:
            return call
        known = {op for (_, op) in PROXIED}
        if (operation or "") in known:
            raise web.HTTPError(405, f"Use {'GET' if method == 'POST' else 'POST'} for this call.")
        raise web.HTTPError(
            404,
            f"Unknown jobs call {operation!r}. The proxy serves: retrieveProducts, browse, "
            "retrieve (GET); create (POST /ucloud/api/jobs), terminate, extend (POST).",
        )

    @web.authenticated
    @authorized
    async def get(self, operation: str | None = None) -> None:
        call = self._call("GET", operation)
        query: dict[str, str] | None = None
        if call.request is not None:
            try:
                query = upstream_query(call, self.request.query)
            except (ValidationError, ValueError) as err:
                message = (
                    validation_message(call, err)
                    if isinstance(err, ValidationError)
                    else f"Invalid request for {call.name}: {err}"
                )
                raise ProxyError(400, message) from None
        self.write_json_bytes(await self.upstream.relay(call, query=query))

    @web.authenticated
    @authorized
    async def post(self, operation: str | None = None) -> None:
        call = self._call("POST", operation)
        body = self.json_body()
        assert call.request is not None
        try:
            call.request.model_validate(body)
        except ValidationError as err:
            raise ProxyError(400, validation_message(call, err)) from None
        self.write_json_bytes(await self.upstream.relay(call, body=body))


class NotFoundHandler(UCloudAPIHandler):
    """Any other path under ``/ucloud``: a JSON 404 after authentication and authorization,
    like the other endpoints' errors. (Jupyter's own 404 page, which would answer otherwise,
    logs a traceback for a path that is not UTF-8.)"""

    def _not_found(self) -> None:
        raise ProxyError(404, f"No ucloud endpoint at {self.request.path!r}.")

    @web.authenticated
    @authorized
    def get(self) -> None:
        self._not_found()

    @web.authenticated
    @authorized
    def post(self) -> None:
        self._not_found()

    @web.authenticated
    @authorized
    def put(self) -> None:
        self._not_found()

    @web.authenticated
    @authorized
    def patch(self) -> None:
        self._not_found()

    @web.authenticated
    @authorized
    def delete(self) -> None:
        self._not_found()

    @web.authenticated
    @authorized
    def head(self) -> None:
        self._not_found()
