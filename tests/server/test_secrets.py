"""UCloud tokens and provider session ids never reach a response, a frame or a log line."""

from __future__ import annotations

import json
import logging

from jupyter_ucloud.logredact import MARKER

from .conftest import Api
from .test_log_redaction import request_logged_with


async def test_no_credential_in_any_response_frame_or_log(
    api: Api, connect, jp_serverapp, local_server, caplog, http_server_client, jp_base_url
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def call(method: str, *parts: str, **kwargs):
        answer = await api.call(method, *parts, **kwargs)
        seen.append(json.dumps(answer))
        return answer

    seen.append(json.dumps(await call("GET", "api", "status")))
    await call("GET", "api", "jobs", "retrieveProducts")
    job_id = await api.start_job()
    await call("GET", "api", "jobs", "browse", includeProduct="true", includeSupport="true")
    await call("GET", "api", "jobs", "retrieve", id=job_id, includeUpdates="true")
    shell = await call("POST", "shells", body={"jobId": job_id, "rank": 0})
    await call("GET", "shells")
    await call("GET", "shells", shell["name"])
    for bad in ({"jobId": job_id, "rank": 9}, {"jobId": "424242", "rank": 0}):
        seen.append(json.dumps(await api.error("POST", "shells", body=bad)))
    term = await connect(shell["name"])
    await term.run("echo $((6*7))x; env | sort")
    await term.wait_for_text("42x")
    await api.terminate(job_id)
    await term.until_closed(timeout=20)
    seen.extend(json.dumps(frame) for frame in term.frames)

    manager = jp_serverapp.web_app.settings["ucloud_shells"]
    upstream = jp_serverapp.web_app.settings["ucloud_upstream"]
    secrets = set(upstream.secrets())
    secrets.add(local_server.refresh_token)
    for shell_object in manager.shells():
        # White-box: the provider session id lives in the shell's codec, server-side only.
        secrets.add(shell_object._leg._codec._session)
    assert len(secrets) >= 3  # refresh token, access token, session identifier

    # URLs that hold them, in requests tornado warns about with the whole URI.
    headers = {"Authorization": f"token {jp_serverapp.identity_provider.token}"}
    for secret in secrets:
        for path in (
            f"api/contents/%ff?session={secret}",
            f"ucloud/shells/{shell['name']}/websocket?since=x&token={secret}",
            f"ucloud/api/jobs/browse?itemsPerPage=%ff&access_token={secret}&x=1",
        ):
            status = await request_logged_with(http_server_client, jp_base_url, headers, path)
            assert 400 <= status < 500, (path, status)

    everything = "\n".join(seen) + "\n" + caplog.text
    for secret in secrets:
        assert secret not in everything
    assert MARKER in caplog.text  # the URLs were logged, without the secrets
