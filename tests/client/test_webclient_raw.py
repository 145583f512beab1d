"""The seed's flow with no jupyter_ucloud code at all: raw HTTP and websocket frames exactly
as UCloud's web client sends them (reference sections 1.3, 2.3, 3, 4)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import requests
from websockets.sync.client import connect

WEB_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Accept": "*/*"}


def test_seed_flow_as_the_web_client(local_server: Any) -> None:
    host = local_server.url
    refreshed = requests.post(
        f"{host}/auth/refresh",
        headers={"Authorization": f"Bearer {local_server.refresh_token}"},
        timeout=10,
    )
    assert refreshed.status_code == 200
    tokens = refreshed.json()
    assert set(tokens) >= {"accessToken", "csrfToken"}
    headers = {**WEB_HEADERS, "Authorization": f"Bearer {tokens['accessToken']}"}

    products = requests.get(f"{host}/api/jobs/retrieveProducts", headers=headers, timeout=10)
    assert products.status_code == 200
    assert products.headers["Content-Type"].startswith("application/json")
    by_provider = products.json()["productsByProvider"]
    example = next(
        item
        for item in by_provider[local_server.provider_id]
        if item["product"]["name"] == "compute-example"
    )
    assert example["support"]["docker"]["terminal"] is True
    reference = example["support"]["product"]

    created = requests.post(
        f"{host}/api/jobs",
        headers=headers,
        data=json.dumps(
            {
                "type": "bulk",
                "items": [
                    {
                        "application": {"name": "terminal", "version": "1"},
                        "product": reference,
                        "name": "raw web client",
                        "replicas": 1,
                        "allowDuplicateJob": False,
                        "parameters": {},
                        "resources": [],
                        "timeAllocation": {"hours": 1, "minutes": 0, "seconds": 0},
                        "hostname": None,
                    }
                ],
            }
        ),
        timeout=10,
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["responses"][0]["id"]
    try:
        flags = (
            "includeApplication=true&includeUpdates=true&includeSupport=true&includeProduct=true"
        )
        deadline = time.monotonic() + 30
        while True:
            job = requests.get(
                f"{host}/api/jobs/retrieve?id={job_id}&{flags}", headers=headers, timeout=10
            ).json()
            if job["status"]["state"] == "RUNNING":
                break
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert [u["state"] for u in job["updates"] if u["state"]][:2] == ["IN_QUEUE", "RUNNING"]
        (local_server.data_dir / "jobs" / job_id / "rank-0" / "hello_world.txt").write_text("")

        opened = requests.post(
            f"{host}/api/jobs/interactiveSession",
            headers=headers,
            data=json.dumps(
                {"type": "bulk", "items": [{"id": job_id, "rank": 0, "sessionType": "SHELL"}]}
            ),
            timeout=10,
        )
        assert opened.status_code == 200, opened.text
        session = opened.json()["responses"][0]
        assert session["session"]["type"] == "shell"
        identifier = session["session"]["sessionIdentifier"]
        hint = base64.b64encode(b"user").decode()
        url = (
            f"{session['providerDomain']}/ucloud/{session['providerId']}/websocket"
            f"?session={identifier}&usernameHint={hint}"
        )
        call = f"jobs.compute.{session['providerId']}.shell.open"
        with connect(url, open_timeout=10) as ws:  # no auth header: the session id is the key
            ws.send(
                json.dumps(
                    {
                        "call": call,
                        "streamId": "0",
                        "payload": {
                            "type": "initialize",
                            "sessionIdentifier": identifier,
                            "cols": 80,
                            "rows": 24,
                        },
                    }
                )
            )
            first = json.loads(ws.recv(timeout=10))
            assert first == {"type": "message", "payload": {"type": "initialize"}, "streamId": "0"}
            ws.send(
                json.dumps(
                    {
                        "call": call,
                        "streamId": "1",
                        "payload": {"type": "input", "data": "ls -1\n"},
                    }
                )
            )
            output, acks = "", []
            deadline = time.monotonic() + 15
            while "hello_world.txt" not in output:
                assert time.monotonic() < deadline, output
                frame = json.loads(ws.recv(timeout=15))
                assert frame["type"] == "message"
                payload = frame["payload"]
                if payload["type"] == "data":
                    assert frame["streamId"] == "0"  # output always on the initialize stream
                    output += payload["data"]
                elif payload["type"] == "ack":
                    acks.append(frame["streamId"])
            assert acks == ["1"]
            assert "ls -1" in output
    finally:
        done = requests.post(
            f"{host}/api/jobs/terminate",
            headers=headers,
            data=json.dumps({"type": "bulk", "items": [{"id": job_id}]}),
            timeout=10,
        )
        assert done.status_code == 200
        assert done.json() == {"responses": [{}]}
