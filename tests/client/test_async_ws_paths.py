"""``AsyncShell``'s websocket (aiohttp) on the ways a provider is reached: an HTTP proxy from the
environment, TLS (verified against the system's certificates), refusals and close frames, and
its ClientSession (one per event loop, closed with its last connection). Real servers only: the
embedded server, a small forwarding proxy and a TLS terminator in front of it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import os
import re
import ssl
import subprocess
import sys
import time
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from jupyter_ucloud import AsyncUCloud
from jupyter_ucloud.client import (
    AsyncShell,
    ShellClosedError,
    UCloudConnectionError,
    UCloudTimeoutError,
)
from jupyter_ucloud.client.shell_protocol import ProviderShellCodec
from jupyter_ucloud.protocol import provider_websocket_url

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


class Proxy:
    """An HTTP proxy: ``CONNECT host:port`` tunnels, and absolute-form requests
    (``GET http://host/path``, what a client sends for ``ws://``) are forwarded on one
    upstream connection. Keeps the request lines it was asked."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line, _, rest = head.partition(b"\r\n")
        method, target, version = line.decode().split(" ")
        self.requests.append(f"{method} {target}")
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            parts = urlsplit(target)
            up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            up_writer.write(f"{method} {path} {version}\r\n".encode() + rest)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


class TlsTerminator:
    """TLS in front of a plain TCP server (the embedded server), with a self-signed
    certificate for 127.0.0.1 made by ``openssl``."""

    def __init__(self, upstream_port: int, directory: Path) -> None:
        self.upstream_port = upstream_port
        self.cert = directory / "cert.pem"
        key = directory / "key.pem"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-keyout", str(key), "-out", str(self.cert), "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
        )
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(self.cert, key)
        self.handshakes = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.context)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


@contextlib.asynccontextmanager
async def provider_session(local_server: Any, job_id: str) -> AsyncIterator[tuple[Any, str]]:
    """A fresh shell session of ``job_id`` and its websocket URL."""
    async with AsyncUCloud(
        host=local_server.url, refresh_token=local_server.refresh_token, timeout=15
    ) as uc:
        session = await uc.jobs.open_interactive_session(job_id, 0, "SHELL")
        url = provider_websocket_url(
            session.provider_domain,
            session.provider_id,
            session.session.session_identifier,
            uc.user or "",
        )
        yield session, url


@contextlib.asynccontextmanager
async def watched_shell(local_server: Any, job_id: str) -> AsyncIterator[AsyncShell]:
    """A shell on ``job_id`` whose peer is watched with 0.8 s pings (and dropped after 0.8 s
    without a pong)."""
    async with provider_session(local_server, job_id) as (session, url):
        codec = ProviderShellCodec(session.provider_id, session.session.session_identifier)
        shell = await AsyncShell.connect(
            url, codec, job_id=job_id, rank=0, ping_interval=0.8, ping_timeout=0.8
        )
        async with shell:
            yield shell


def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def test_a_shell_goes_through_the_proxy_of_the_environment(
    local_server: Any, terminal_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    proxy = Proxy()
    proxy_url = await proxy.start()
    try:
        async with provider_session(local_server, terminal_job) as (session, url):
            monkeypatch.setenv("http_proxy", proxy_url)  # for the websocket only
            identifier = session.session.session_identifier
            shell = await AsyncShell.connect(
                url,
                ProviderShellCodec(session.provider_id, identifier),
                job_id=terminal_job,
                rank=0,
                secrets=[identifier],
            )
            async with shell:
                assert (await shell.run("echo via-$((2*21))")).output == "via-42\n"
        (request,) = proxy.requests  # the websocket's, as an http URL (what proxies know)
        assert request.startswith(f"GET {url.replace('ws://', 'http://', 1).split('?')[0]}?")

        # NO_PROXY is honoured as for the REST calls.
        monkeypatch.delenv("http_proxy")
        async with provider_session(local_server, terminal_job) as (session, url):
            monkeypatch.setenv("http_proxy", proxy_url)
            monkeypatch.setenv("no_proxy", "127.0.0.1")
            identifier = session.session.session_identifier
            codec = ProviderShellCodec(session.provider_id, identifier)
            async with await AsyncShell.connect(url, codec, job_id=terminal_job, rank=0) as shell:
                assert (await shell.run("echo direct")).output == "direct\n"
        assert len(proxy.requests) == 1
    finally:
        await proxy.stop()


async def test_tls_is_verified_and_the_refusal_names_no_secret(
    local_server: Any, terminal_job: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    tls = TlsTerminator(urlsplit(local_server.url).port or 0, tmp_path)
    port = await tls.start()
    try:
        async with provider_session(local_server, terminal_job) as (session, url):
            identifier = session.session.session_identifier
            wss = f"wss://127.0.0.1:{port}/" + url.split("/", 3)[3]
            with pytest.raises(UCloudConnectionError) as caught:
                await AsyncShell.connect(
                    wss,
                    ProviderShellCodec(session.provider_id, identifier),
                    job_id=terminal_job,
                    rank=0,
                    secrets=[identifier],
                )
        message = str(caught.value)
        assert "certificate verify failed" in message
        assert identifier not in message
        assert message.startswith(f"[job {terminal_job}, rank 0] cannot open wss://127.0.0.1:")
    finally:
        await tls.stop()


TLS_CLIENT = """
import asyncio, sys
from jupyter_ucloud.client import AsyncShell
from jupyter_ucloud.client.shell_protocol import ProviderShellCodec

async def main(url, provider, identifier):
    codec = ProviderShellCodec(provider, identifier)
    async with await AsyncShell.connect(url, codec, job_id="1", rank=0) as shell:
        print((await shell.run("echo tls-$((3*3))")).output, end="")

asyncio.run(main(*sys.argv[1:]))
"""


async def test_tls_with_a_trusted_certificate_through_a_connect_proxy(
    local_server: Any, terminal_job: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wss provider behind an HTTPS proxy (CONNECT), its certificate trusted through the
    system's trust settings (``SSL_CERT_FILE``, read when aiohttp is imported: a new
    process)."""
    _no_proxy_env(monkeypatch)
    tls = TlsTerminator(urlsplit(local_server.url).port or 0, tmp_path)
    port = await tls.start()
    proxy = Proxy()
    proxy_url = await proxy.start()
    try:
        async with provider_session(local_server, terminal_job) as (session, url):
            wss = f"wss://127.0.0.1:{port}/" + url.split("/", 3)[3]
            identifier = session.session.session_identifier
            env = {**os.environ, "SSL_CERT_FILE": str(tls.cert), "https_proxy": proxy_url}
            env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parents[2]), *sys.path])
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                TLS_CLIENT,
                wss,
                session.provider_id,
                identifier,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(child.communicate(), 60)
        assert child.returncode == 0, err.decode()[-2000:]
        assert out.decode() == "tls-9\n"
        assert b"Unclosed" not in err
        assert proxy.requests == [f"CONNECT 127.0.0.1:{port}"]
        assert tls.handshakes == 1
    finally:
        await proxy.stop()
        await tls.stop()


async def test_refusals_timeouts_and_close_frames(
    local_server: Any, terminal_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _no_proxy_env(monkeypatch)
    async with provider_session(local_server, terminal_job) as (session, url):
        identifier = session.session.session_identifier
        codec = ProviderShellCodec(session.provider_id, identifier)
        # A refused handshake says the HTTP status, not aiohttp's repr of the request.
        wrong_path = url.replace("/websocket?", "/no-such-socket?")
        with pytest.raises(UCloudConnectionError) as caught:
            await AsyncShell.connect(
                wrong_path, codec, job_id=terminal_job, rank=0, secrets=[identifier]
            )
        assert str(caught.value) == (
            f"[job {terminal_job}, rank 0] cannot open {wrong_path.split('?')[0]}: "
            "HTTP 404: Not Found"
        )
        # The provider's close frame, code and reason, before the shell is ready.
        bad = ProviderShellCodec(session.provider_id, "not-a-session")
        with pytest.raises(ShellClosedError, match="closed before it was ready: bad session"):
            await AsyncShell.connect(url, bad, job_id=terminal_job, rank=0)
        # ... and after: exit ends the shell with a normal close.
        shell = await AsyncShell.connect(url, codec, job_id=terminal_job, rank=0)
        await shell.send("exit\n")
        assert [chunk async for chunk in shell]
        assert (shell.close_code, shell.close_reason, shell.close_message) == (
            1000,
            "code 1000",
            "shell exited",
        )
        await shell.close()

    # A server that accepts the connection and never answers: a timeout.
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    try:
        with pytest.raises(
            UCloudTimeoutError, match=r"no websocket handshake from .* within 0\.5 s"
        ):
            await AsyncShell.connect(
                f"ws://127.0.0.1:{port}/ws?session=x", codec, job_id="1", rank=0, timeout=0.5
            )
    finally:
        silent.close()
    with pytest.raises(UCloudConnectionError, match="Connection refused"):
        await AsyncShell.connect(f"ws://127.0.0.1:{port}/ws", codec, job_id="1", rank=0)


async def test_closing_a_shell_whose_provider_does_not_answer_takes_a_second() -> None:
    """A provider that accepted the shell and then answers nothing (not the close either): the
    close gives up after ``CLOSE_TIMEOUT`` and drops the connection."""
    from jupyter_ucloud.client.aio_websocket import CLOSE_TIMEOUT

    dropped = asyncio.Event()

    async def mute_provider(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        key = re.search(r"(?im)^sec-websocket-key:\s*(\S+)", head)
        assert key is not None
        accept = base64.b64encode(hashlib.sha1((key.group(1) + WS_GUID).encode()).digest())
        ready = b'{"type":"message","payload":{"type":"initialize"},"streamId":"0"}'
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
            + accept
            + b"\r\n\r\n"
            + bytes([0x81, len(ready)])
            + ready
        )
        while await reader.read(65536):  # everything, the close frame too, goes unanswered
            pass
        dropped.set()
        writer.close()

    server = await asyncio.start_server(mute_provider, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        shell = await AsyncShell.connect(
            f"ws://127.0.0.1:{port}/ucloud/local/websocket?session=s",
            ProviderShellCodec("local", "s"),
            job_id="1",
            rank=0,
            timeout=5,
        )
        started = time.monotonic()
        await shell.close()
        took = time.monotonic() - started
        assert CLOSE_TIMEOUT * 0.9 <= took < CLOSE_TIMEOUT + 1.0, took
        await asyncio.wait_for(dropped.wait(), 5)  # the connection is gone, not left open
    finally:
        server.close()


async def test_pongs_are_heard_while_nobody_reads(
    local_server: Any, terminal_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``ping_interval`` and output read now and then (``read``, not ``stream_output``),
    the pongs of a provider that answers are taken while the caller does not read (aiohttp
    hands pongs over only to a read: a ping starts one when none is under way)."""
    _no_proxy_env(monkeypatch)
    async with watched_shell(local_server, terminal_job) as shell:
        assert (await shell.run("echo one")).output == "one\n"
        pings = shell.liveness
        assert pings is not None
        # silent peer: probed after 0.8 s, a pong due within 0.8 s (1.3 s with the
        # watch's 0.5 s tick; a loaded machine needs that): 3 pings or more
        await asyncio.sleep(4.5)
        assert not shell.closed, shell.close_reason
        assert pings.responsive
        assert (await shell.run("echo two")).output == "two\n"


async def test_output_left_unread_does_not_drop_the_connection(
    local_server: Any, terminal_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Output that arrives while the caller reads nothing waits for the caller's next read, and
    so does any pong behind it: the watch holds meanwhile (the peer's silence means nothing
    then), the connection stays up, and the caller then gets that output, in order."""
    _no_proxy_env(monkeypatch)
    async with watched_shell(local_server, terminal_job) as shell:
        assert (await shell.run("echo one")).output == "one\n"
        await shell.send("for i in 1 2 3; do echo late-$i; sleep 0.5; done\n")
        await asyncio.sleep(4.5)  # unread output: a pong behind it is not heard
        assert not shell.closed, shell.close_reason
        assert shell.liveness is not None
        assert shell.liveness.responsive
        seen = ""
        deadline = time.monotonic() + 10
        while "late-3" not in seen and time.monotonic() < deadline:
            seen += await shell.read(timeout=1)
        assert seen.index("late-1") < seen.index("late-2") < seen.index("late-3"), seen
        assert (await shell.run("echo two")).output == "two\n"


def test_one_session_per_loop_closed_with_its_last_connection(
    local_server: Any, terminal_job: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shells of one loop share a ClientSession; when the last closes, so does the session, and
    a new loop (``asyncio.run`` again) gets its own: no "Unclosed client session"."""
    from jupyter_ucloud.client import aio_websocket

    _no_proxy_env(monkeypatch)
    sessions: list[Any] = []

    async def two_shells() -> None:
        async with (
            provider_session(local_server, terminal_job) as (first, url1),
            provider_session(local_server, terminal_job) as (second, url2),
        ):
            a = await AsyncShell.connect(
                url1,
                ProviderShellCodec(first.provider_id, first.session.session_identifier),
                job_id=terminal_job,
                rank=0,
            )
            b = await AsyncShell.connect(
                url2,
                ProviderShellCodec(second.provider_id, second.session.session_identifier),
                job_id=terminal_job,
                rank=0,
            )
            pool = aio_websocket._pools[asyncio.get_running_loop()]
            sessions.append(pool.session)
            assert pool.users == 2
            assert (await a.run("echo a")).output == "a\n"
            assert (await b.run("echo b")).output == "b\n"
            await a.close()
            assert not pool.session.closed
            await b.close()
            assert pool.session.closed
            assert asyncio.get_running_loop() not in aio_websocket._pools

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(two_shells())
        asyncio.run(two_shells())
        first, second = sessions
        assert first is not second  # one per loop
        assert first.closed
        assert second.closed
        names = [repr(first), repr(second)]
        del first, second
        sessions.clear()
        gc.collect()
    # (other tests' unclosed REST clients may be collected here too: only ours count)
    unclosed = [str(w.message) for w in caught if "Unclosed" in str(w.message)]
    assert not [m for m in unclosed if any(name in m for name in names)], unclosed
