"""REST: open, list, inspect and close shells (``/ucloud/shells``)."""

from __future__ import annotations

from typing import Annotated

from jupyter_server.auth.decorator import authorized
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError
from tornado import web

from ..errors import ProxyError
from ..shells import Shell, ShellError
from .base import UCloudAPIHandler

__all__ = ["ShellCreateRequest", "ShellHandler", "ShellsHandler"]


class ShellCreateRequest(BaseModel):
    """``POST /ucloud/shells`` body."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    job_id: Annotated[StrictStr, Field(alias="jobId", min_length=1, max_length=200)]
    rank: Annotated[StrictInt, Field(ge=0, le=100000)] = 0
    cols: Annotated[StrictInt, Field(ge=1, le=2000)] = 80
    rows: Annotated[StrictInt, Field(ge=1, le=1000)] = 24
    replaces: Annotated[StrictStr | None, Field(max_length=200)] = None


class ShellsHandler(UCloudAPIHandler):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.write_json([shell.model() for shell in self.shells.shells()])

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.json_body()
        if not isinstance(body, dict):
            raise ProxyError(400, "The body must be a JSON object {jobId, rank, cols?, rows?}.")
        try:
            request = ShellCreateRequest.model_validate(body)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                for e in err.errors()[:5]
            )
            raise ProxyError(400, f"Invalid shell request: {problems}") from None
        try:
            shell = await self.shells.open(
                self.owner,
                request.job_id,
                request.rank,
                cols=request.cols,
                rows=request.rows,
                replaces=request.replaces,
            )
        except ShellError as err:
            raise ProxyError(err.status, err.message) from None
        self.set_header("Location", self.request.path.rstrip("/") + "/" + shell.name)
        self.write_json(shell.model(), status=201)


class ShellHandler(UCloudAPIHandler):
    def _shell(self, name: str) -> Shell:
        shell = self.shells.get(name)
        if shell is None:
            raise ProxyError(404, f"No shell named {name!r}.")
        return shell

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        self.write_json(self._shell(name).model())

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        self._shell(name)
        await self.shells.close(name)
        self.set_status(204)
        self.finish()
