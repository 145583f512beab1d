"""Authentication as UCloud does it: refresh tokens, JWT access tokens, API tokens, projects."""

from __future__ import annotations

import hashlib
import json
import stat
import subprocess
import sys
import time

import jwt
import requests

from jupyter_ucloud.protocol import ErrorBody, RefreshResponse

from .conftest import Api, api_for, terminal_spec


def _error(response: requests.Response) -> ErrorBody:
    assert response.headers["Content-Type"].startswith("application/json")
    return ErrorBody.model_validate(response.json())


def test_refresh_gives_a_ucloud_jwt(local_server) -> None:
    response = requests.post(
        local_server.url + "/auth/refresh",
        headers={"Authorization": f"Bearer {local_server.refresh_token}"},
        timeout=10,
    )
    assert response.status_code == 200
    tokens = RefreshResponse.model_validate(response.json())
    assert set(response.json()) == {"accessToken", "csrfToken"}
    header = jwt.get_unverified_header(tokens.access_token)
    assert header["alg"] == "HS512"
    claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
    assert claims["sub"] == "user"
    assert claims["aud"] == ["all:write"]
    assert claims["iss"] == "cloud.sdu.dk"
    assert claims["role"] == "USER"
    assert claims["exp"] - claims["iat"] == 600
    assert abs(claims["iat"] - time.time()) < 60


def test_refresh_token_file_is_private_and_never_logged(local_server) -> None:
    path = local_server.data_dir / "refresh_token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((local_server.data_dir / "secret").stat().st_mode) == 0o600
    token = local_server.refresh_token
    assert len(token) == 64
    int(token, 16)
    log = local_server.log_file.read_text()
    assert f"Refresh token for user 'user' in {path}" in log
    assert token not in log


def test_bad_refresh_tokens(local_server) -> None:
    url = local_server.url + "/auth/refresh"
    unknown = requests.post(url, headers={"Authorization": "Bearer " + "ab" * 32}, timeout=10)
    assert unknown.status_code == 401
    assert _error(unknown).why == "Unauthorized"
    no_prefix = requests.post(
        url, headers={"Authorization": local_server.refresh_token}, timeout=10
    )
    assert no_prefix.status_code == 403
    assert _error(no_prefix).why == "Forbidden"
    missing = requests.post(url, timeout=10)
    assert missing.status_code == 403


def test_bearer_is_checked_on_every_api_call(api: Api, local_server) -> None:
    secret = (local_server.data_dir / "secret").read_text().strip()
    now = int(time.time())
    claims = {
        "sub": "user",
        "iat": now - 700,
        "exp": now - 100,
        "aud": ["all:write"],
        "iss": "cloud.sdu.dk",
        "role": "USER",
    }
    expired = jwt.encode(claims, secret, algorithm="HS512")
    forged = jwt.encode({**claims, "exp": now + 600}, "not-the-secret" * 8, algorithm="HS512")
    unsigned = jwt.encode({**claims, "exp": now + 600}, None, algorithm="none")
    wrong_issuer = jwt.encode(
        {**claims, "exp": now + 600, "iss": "elsewhere"}, secret, algorithm="HS512"
    )
    for token in (None, expired, forged, unsigned, wrong_issuer, "garbage", "uc1-" + "0" * 48):
        for name, body in (
            ("jobs.retrieveProducts", None),
            ("jobs.browse", None),
            ("jobs.create", {"items": [terminal_spec()]}),
            ("jobs.terminate", {"items": [{"id": "1"}]}),
        ):
            response = api.call(name, body, token=token)
            assert response.status_code == 403, (name, token and token[:20])
            assert _error(response).why == "Forbidden"
    # The real token works, and a valid token signed with our secret is accepted.
    assert api.call("jobs.retrieveProducts").status_code == 200
    valid = jwt.encode({**claims, "iat": now, "exp": now + 600}, secret, algorithm="HS512")
    assert api.call("jobs.retrieveProducts", token=valid).status_code == 200


def test_access_tokens_expire(fresh_local_server) -> None:
    fresh_local_server.stop()
    # JWT times are whole seconds: a lifetime of 3 s is at least 2 s, time for a loaded
    # machine to use a fresh token.
    fresh_local_server.extra_args = ["--access-token-lifetime", "3"]
    fresh_local_server.start()
    api = api_for(fresh_local_server)
    assert api.call("jobs.retrieveProducts").status_code == 200
    time.sleep(4.1)
    response = api.call("jobs.retrieveProducts")
    assert response.status_code == 403
    assert _error(response).why == "Forbidden"
    assert api_for(fresh_local_server).call("jobs.retrieveProducts").status_code == 200


def test_api_tokens(fresh_local_server) -> None:
    created = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_ucloud",
            "local",
            "--data-dir",
            str(fresh_local_server.data_dir),
            "--create-api-token",
            "notebook",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    token = created.stdout.strip()
    assert token.startswith("uc")
    api = Api(fresh_local_server.url, token)
    assert api.call("jobs.retrieveProducts").status_code == 200
    (job_id,) = api.create(terminal_spec())
    assert api.retrieve(job_id).owner.created_by == "user"
    api.terminate(job_id)
    # Only a hash is stored; a token with the right id and another secret is refused.
    database = (fresh_local_server.data_dir / "jobs.sqlite").read_bytes()
    assert token.encode() not in database
    token_id, _, secret = token[2:].partition("-")
    tampered = f"uc{token_id}-{secret[::-1]}"
    assert api.call("jobs.retrieveProducts", token=tampered).status_code == 403


def test_other_users_jobs_are_invisible(fresh_local_server) -> None:
    other_token = "uc7f-" + "5" * 48
    config = fresh_local_server.data_dir / "config.json"
    config.write_text(
        json.dumps(
            {
                "api_tokens": [
                    {
                        "id": 0x7F,
                        "owner": "other",
                        "sha256": hashlib.sha256(other_token.encode()).hexdigest(),
                    }
                ]
            }
        )
    )
    fresh_local_server.stop()
    fresh_local_server.config_file = config
    fresh_local_server.start()
    mine = api_for(fresh_local_server)
    other = Api(fresh_local_server.url, other_token)
    (job_id,) = mine.create(terminal_spec())
    mine.wait_for_state(job_id, "RUNNING")

    retrieve = other.call("jobs.retrieve", query={"id": job_id})
    assert retrieve.status_code == 403
    assert _error(retrieve).why == "Write permission is required"
    for name, item in (
        ("jobs.terminate", {"id": job_id}),
        (
            "jobs.extend",
            {"jobId": job_id, "requestedTime": {"hours": 1, "minutes": 0, "seconds": 0}},
        ),
        ("jobs.openInteractiveSession", {"id": job_id, "rank": 0, "sessionType": "SHELL"}),
    ):
        response = other.call(name, {"items": [item]})
        assert response.status_code == 404, name
        assert _error(response).why == f"Permission denied or job not found ({job_id})"
    assert other.ok("jobs.browse")["items"] == []
    assert [j["id"] for j in mine.ok("jobs.browse")["items"]] == [job_id]
    assert mine.retrieve(job_id).state.value == "RUNNING"
    mine.terminate(job_id)


def test_project_header(api: Api) -> None:
    response = api.call("jobs.browse", headers={"Project": "no-such-project"})
    assert response.status_code == 403
    assert _error(response).why == "Bad token supplied"
    assert api.call("jobs.browse", headers={"Project": ""}).status_code == 200
