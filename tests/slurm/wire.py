"""A small client of UCloud's wire protocol (HTTP + the provider shell websocket), written from
the reference so that the Slurm tests see exactly what a UCloud client sees."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


class ApiError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


@dataclass
class Api:
    """Calls of the Jobs API with a refreshed access token."""

    url: str
    refresh_token: str
    provider_id: str = "local"
    _access: str = ""

    def _token(self) -> str:
        if not self._access:
            answer = requests.post(
                f"{self.url}/auth/refresh",
                headers={"Authorization": f"Bearer {self.refresh_token}"},
                timeout=10,
            )
            answer.raise_for_status()
            self._access = answer.json()["accessToken"]
        return self._access

    def call(self, method: str, path: str, body: Any = None, params: Any = None) -> Any:
        answer = requests.request(
            method,
            f"{self.url}{path}",
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {self._token()}"},
            timeout=30,
        )
        if answer.status_code != 200:
            try:
                detail = answer.json()
            except ValueError:
                detail = answer.text
            raise ApiError(answer.status_code, detail)
        return answer.json()

    def create(self, spec: dict[str, Any]) -> str:
        return self.call("POST", "/api/jobs", {"items": [spec]})["responses"][0]["id"]

    def retrieve(self, job_id: str) -> dict[str, Any]:
        return self.call(
            "GET", "/api/jobs/retrieve", params={"id": job_id, "includeUpdates": "true"}
        )

    def terminate(self, job_id: str) -> None:
        self.call("POST", "/api/jobs/terminate", {"items": [{"id": job_id}]})

    def extend(self, job_id: str, hours: int = 0, minutes: int = 0) -> None:
        duration = {"hours": hours, "minutes": minutes, "seconds": 0}
        self.call(
            "POST", "/api/jobs/extend", {"items": [{"jobId": job_id, "requestedTime": duration}]}
        )

    def wait_for_state(self, job_id: str, *states: str, timeout: float = 20.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        job = self.retrieve(job_id)
        while job["status"]["state"] not in states:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} is {job['status']['state']}, not {states} after {timeout} s;"
                    f" updates: {[(u.get('state'), u.get('status')) for u in job['updates']]}"
                )
            time.sleep(0.2)
            job = self.retrieve(job_id)
        return job

    def open_shell(self, job_id: str, rank: int, cols: int = 80, rows: int = 24) -> Shell:
        item = {"id": job_id, "rank": rank, "sessionType": "SHELL"}
        opened = self.call("POST", "/api/jobs/interactiveSession", {"items": [item]})
        session = opened["responses"][0]
        domain = session["providerDomain"]
        ident = session["session"]["sessionIdentifier"]
        hint = base64.b64encode(b"user").decode()
        ws = connect(
            f"{domain}/ucloud/{session['providerId']}/websocket?usernameHint={hint}",
            open_timeout=10,
            max_size=16 * 1024 * 1024,
        )
        shell = Shell(ws, f"jobs.compute.{session['providerId']}.shell.open")
        shell.send_payload(
            {"type": "initialize", "sessionIdentifier": ident, "cols": cols, "rows": rows}
        )
        shell.expect_initialized()
        return shell


@dataclass
class Shell:
    """The client side of one provider shell websocket."""

    ws: ClientConnection
    call: str
    output: str = ""
    closed: bool = False
    _stream: int = 0
    _seen: int = field(default=0)

    def send_payload(self, payload: dict[str, Any]) -> None:
        frame = {"call": self.call, "streamId": str(self._stream), "payload": payload}
        self._stream += 1
        self.ws.send(json.dumps(frame))

    def expect_initialized(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            frame = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if frame["payload"].get("type") == "initialize":
                return
            self.output += frame["payload"].get("data", "")
        raise AssertionError("no initialize answer")

    def send(self, text: str) -> None:
        self.send_payload({"type": "input", "data": text})

    def resize(self, cols: int, rows: int) -> None:
        self.send_payload({"type": "resize", "cols": cols, "rows": rows})

    def pump(self, timeout: float) -> bool:
        """Read frames for up to ``timeout`` s; False once the socket is closed."""
        try:
            raw = self.ws.recv(timeout=timeout)
        except TimeoutError:
            return True
        except ConnectionClosed:
            self.closed = True
            return False
        frame = json.loads(raw)
        self.output += frame["payload"].get("data", "")
        return True

    def expect(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """Wait until the (ANSI-stripped) output after the last match matches ``pattern``."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while True:
            clean = ANSI.sub("", self.output[self._seen :])
            match = regex.search(clean)
            if match:
                self._seen = len(self.output)
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (not self.pump(min(remaining, 0.5)) and self.closed):
                raise AssertionError(f"no {pattern!r} in shell output: {clean[-2000:]!r}")

    def run(self, command: str, timeout: float = 15.0) -> str:
        """Run ``command`` and return what it printed (between two unique markers)."""
        marker = f"M{time.monotonic_ns()}"
        self.send(f"echo {marker}-A; {command}; echo {marker}-B\n")
        match = self.expect(rf"(?s){marker}-A\n(.*?){marker}-B\n", timeout)
        return match.group(1)

    def wait_closed(self, timeout: float) -> float:
        """Seconds until the server closed the socket."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if not self.pump(0.5):
                return time.monotonic() - start
        raise AssertionError(f"the shell socket is still open after {timeout} s")

    def close(self) -> None:
        self.ws.close()
