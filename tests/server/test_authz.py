"""Every endpoint asks the authorizer about the ``ucloud`` resource."""

from __future__ import annotations

from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from traitlets.config import Config

from .test_auth import _walk


class DenyUCloud(Authorizer):
    """Allows everything except the ``ucloud`` resource."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource != "ucloud"


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    jp_server_config.ServerApp.authorizer_class = DenyUCloud
    return jp_server_config


async def test_no_endpoint_answers_without_authorization(jp_fetch, jp_ws_fetch) -> None:
    answers = await _walk(jp_fetch, jp_ws_fetch, {})
    assert all(code == 403 for _, code, _ in answers), answers
