"""What the sync and the async client share: where they talk to and who they are."""

from __future__ import annotations

from .discovery import Target, resolve
from .transport import Exchange


class ClientBase:
    """Resolves the connection (see ``discovery``) and holds the wire ``Exchange``."""

    def __init__(
        self,
        host: str | None = None,
        refresh_token: str | None = None,
        api_token: str | None = None,
        project: str | None = None,
        *,
        jupyter_url: str | None = None,
        jupyter_token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._target: Target = resolve(
            host, refresh_token, api_token, project, jupyter_url, jupyter_token
        )
        self._exchange = Exchange(self._target.endpoint, self._target.auth, self._target.project)
        self.timeout = timeout
        self._setup()

    def _setup(self) -> None:
        """The flavour's own parts (HTTP session, ``jobs``, ``shells``)."""

    @property
    def host(self) -> str:
        """UCloud's URL, or the Jupyter server's when going through its proxy."""
        return self._target.endpoint.base_url

    @property
    def via_jupyter(self) -> bool:
        return self._target.via_jupyter

    @property
    def project(self) -> str | None:
        return self._target.project

    @property
    def user(self) -> str | None:
        """The UCloud username, once known (from the access token's ``sub``)."""
        return self._target.auth.username

    def __repr__(self) -> str:
        name = type(self).__name__
        if self.via_jupyter:
            return f"{name}(jupyter={self.host!r})"
        project = f", project={self.project!r}" if self.project else ""
        return f"{name}(host={self.host!r}, user={self.user!r}{project})"
