#!/usr/bin/env python
"""What one relay process costs a keystroke: websocket round trips to a tornado echo server,
straight and through relays, in one run (the straight path is the baseline).

    .venv/bin/python bench/bench_relay.py [--round-trips 3000] [--runs 3]

Each server is a subprocess of this script on 127.0.0.1. The client speaks websocket with
`websockets`' sans-IO protocol over a blocking socket (no event loop, no thread), sends
`["stdin", "x"]` and waits for the echo. Paths:

- direct: the echo server (tornado on uvloop, as the embedded provider);
- tcp relay: an asyncio relay that copies bytes both ways (no websocket parsing);
- tornado relay: a tornado websocket server that relays each frame to the echo server through
  tornado's websocket client, and the answers back from the client's read loop (the shape of
  the bridge: `on_message` -> `write_message`, output pushed from `on_message`).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

FRAME = b'["stdin", "x"]'


def serve_echo(port: int) -> None:
    import tornado.web
    import tornado.websocket
    import uvloop

    class Echo(tornado.websocket.WebSocketHandler):
        def open(self, *args: str, **kwargs: str) -> None:
            self.set_nodelay(True)

        def on_message(self, message: str | bytes) -> None:
            self.write_message(message)

    async def main() -> None:
        tornado.web.Application([("/ws", Echo)]).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    uvloop.run(main())


def serve_tcp_relay(port: int, upstream_port: int) -> None:
    class Upstream(asyncio.Protocol):
        def __init__(self, downstream: asyncio.Transport) -> None:
            self.downstream = downstream

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            _nodelay(transport)

        def data_received(self, data: bytes) -> None:
            self.downstream.write(data)

    class Downstream(asyncio.Protocol):
        def __init__(self) -> None:
            self.upstream: asyncio.Transport | None = None
            self.early: list[bytes] = []
            self.connecting: asyncio.Task[None] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            _nodelay(transport)
            self.connecting = asyncio.ensure_future(self.connect(transport))

        async def connect(self, transport: asyncio.Transport) -> None:
            loop = asyncio.get_running_loop()
            upstream, _ = await loop.create_connection(
                lambda: Upstream(transport), "127.0.0.1", upstream_port
            )
            self.upstream = upstream
            for data in self.early:
                upstream.write(data)

        def data_received(self, data: bytes) -> None:
            if self.upstream is None:
                self.early.append(data)
            else:
                self.upstream.write(data)

    async def main() -> None:
        await asyncio.get_running_loop().create_server(Downstream, "127.0.0.1", port)
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_tornado_relay(port: int, upstream: int) -> None:
    import tornado.web
    import tornado.websocket

    class Relay(tornado.websocket.WebSocketHandler):
        async def open(self, *args: str, **kwargs: str) -> None:
            self.set_nodelay(True)
            self.up = await tornado.websocket.websocket_connect(f"ws://127.0.0.1:{upstream}/ws")
            self.up.on_message = self.answer  # type: ignore[method-assign,assignment]

        def answer(self, message: str | bytes | None) -> None:
            if message is not None:
                self.write_message(message)

        def on_message(self, message: str | bytes) -> None:
            self.up.write_message(message)

    async def main() -> None:
        tornado.web.Application([("/ws", Relay)]).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def round_trips(port: int, count: int) -> list[float]:
    """Microseconds per round trip of one small text frame, after a warm-up."""
    from websockets.client import ClientProtocol
    from websockets.http11 import Response
    from websockets.uri import parse_uri

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws"))
    protocol.send_request(protocol.connect())

    def flush() -> None:
        for data in protocol.data_to_send():
            sock.sendall(data)

    def receive_one() -> None:
        while True:
            if protocol.events_received():
                return
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection")
            protocol.receive_data(data)

    flush()
    while not any(isinstance(event, Response) for event in protocol.events_received()):
        protocol.receive_data(sock.recv(65536))
    samples = []
    for i in range(count + 300):
        started = time.perf_counter()
        protocol.send_text(FRAME)
        flush()
        receive_one()
        if i >= 300:
            samples.append((time.perf_counter() - started) * 1e6)
    sock.close()
    return samples


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(role: str, *ports: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, __file__, "--serve", role, *map(str, ports)])
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", ports[0]), timeout=1).close()
            return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(f"the {role} server did not start") from None
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-trips", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3, help="rounds, taking turns between paths")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        role, *ports = args.serve
        servers: dict[str, Callable[..., None]] = {
            "echo": serve_echo,
            "tcp": serve_tcp_relay,
            "tornado": serve_tornado_relay,
        }
        servers[role](*map(int, ports))
        return 0

    echo, tcp, relay = _free_port(), _free_port(), _free_port()
    processes = [_start("echo", echo), _start("tcp", tcp, echo), _start("tornado", relay, echo)]
    paths = {"direct": echo, "tcp relay": tcp, "tornado relay": relay}
    results: dict[str, list[float]] = {name: [] for name in paths}
    try:
        for run in range(args.runs):
            names = list(paths)
            for name in names[run % len(names) :] + names[: run % len(names)]:
                results[name].append(statistics.median(round_trips(paths[name], args.round_trips)))
    finally:
        for process in processes:
            process.terminate()
            process.wait(5)
    base = statistics.median(results["direct"])
    print(f"# {args.runs} runs of {args.round_trips} round trips per path; p50 per run, µs")
    print(f"{'path':<15} {'p50 per run':<24} {'median':>8} {'added to direct':>16}")
    for name, values in results.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:6.1f}" for v in values)
        print(f"{name:<15} {runs:<24} {median:8.1f} {median - base:16.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
