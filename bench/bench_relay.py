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
  the bridge before issue 14: `on_message` -> `write_message`, output pushed from `on_message`);
- aiohttp relay: the same server, its upstream leg the bridge's own (`client.aio_websocket`:
  aiohttp's client, a frame written without a task, a read loop task per connection).

`--acks`: the echo server answers each frame as a UCloud provider answers an input, with an
`ack` frame and then the echo (two frames per round trip). Besides the round trips, the CPU time
of each relay process per round trip is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

FRAME = b'["stdin", "x"]'


ACK = '{"type":"message","payload":{"type":"ack"},"streamId":"%d"}'
ACK_PREFIX = ACK[:40]


def is_ack(message: str | bytes) -> bool:
    return isinstance(message, str) and message.startswith(ACK_PREFIX)


def serve_echo(port: int, acks: int = 0) -> None:
    import tornado.web
    import tornado.websocket
    import uvloop

    class Echo(tornado.websocket.WebSocketHandler):
        def open(self, *args: str, **kwargs: str) -> None:
            self.set_nodelay(True)
            self.count = 0

        def on_message(self, message: str | bytes) -> None:
            if acks:
                self.count += 1
                self.write_message(ACK % self.count)
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
            if message is not None and not is_ack(message):
                self.write_message(message)

        def on_message(self, message: str | bytes) -> None:
            self.up.write_message(message)

    async def main() -> None:
        tornado.web.Application([("/ws", Relay)]).listen(port, "127.0.0.1")
        await asyncio.Event().wait()

    asyncio.run(main())


def serve_aiohttp_relay(port: int, upstream: int) -> None:
    import tornado.web
    import tornado.websocket

    from jupyter_ucloud.client.aio_websocket import WebSocket, connect_websocket

    class Relay(tornado.websocket.WebSocketHandler):
        up: WebSocket

        async def open(self, *args: str, **kwargs: str) -> None:
            self.set_nodelay(True)
            self.up = await connect_websocket(
                f"ws://127.0.0.1:{upstream}/ws", headers={}, timeout=10, max_size=1 << 24
            )
            self.pump = asyncio.ensure_future(self.answer())

        async def answer(self) -> None:
            while (message := await self.up.read()) is not None:
                if not is_ack(message):
                    self.write_message(message)

        def on_message(self, message: str | bytes) -> None:
            self.up.write(message if isinstance(message, str) else message.decode())

        def on_close(self) -> None:
            self.up.close()

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

    def receive_one() -> None:  # the echo (an ack before it, if any, is skipped)
        while True:
            events = protocol.events_received()
            if any(not getattr(e, "data", b"").startswith(ACK_PREFIX.encode()) for e in events):
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
    parser.add_argument("--acks", action="store_true", help="an ack frame before each echo")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        role, *ports = args.serve
        servers: dict[str, Callable[..., None]] = {
            "echo": serve_echo,
            "tcp": serve_tcp_relay,
            "tornado": serve_tornado_relay,
            "aiohttp": serve_aiohttp_relay,
        }
        servers[role](*map(int, ports))
        return 0

    echo, tcp, relay, aio = _free_port(), _free_port(), _free_port(), _free_port()
    processes = {
        "direct": _start("echo", echo, int(args.acks)),
        "tcp relay": _start("tcp", tcp, echo),
        "tornado relay": _start("tornado", relay, echo),
        "aiohttp relay": _start("aiohttp", aio, echo),
    }
    paths = {"direct": echo, "tcp relay": tcp, "tornado relay": relay, "aiohttp relay": aio}
    results: dict[str, list[float]] = {name: [] for name in paths}
    cpu: dict[str, list[float]] = {name: [] for name in paths}
    try:
        for run in range(args.runs):
            names = list(paths)
            for name in names[run % len(names) :] + names[: run % len(names)]:
                before = _cpu_seconds(processes[name].pid)
                samples = round_trips(paths[name], args.round_trips)
                used = _cpu_seconds(processes[name].pid) - before
                results[name].append(statistics.median(samples))
                cpu[name].append(used / (args.round_trips + 300) * 1e6)
    finally:
        for process in processes.values():
            process.terminate()
            process.wait(5)
    base = statistics.median(results["direct"])
    frames = "ack + echo" if args.acks else "echo"
    print(
        f"# {args.runs} runs of {args.round_trips} round trips per path ({frames}); p50 per run,"
        " µs; CPU of the path's server process per round trip, µs (direct: the echo server)"
    )
    print(f"{'path':<15} {'p50 per run':<24} {'median':>8} {'added to direct':>16} {'CPU':>6}")
    for name, values in results.items():
        median = statistics.median(values)
        runs = " ".join(f"{v:6.1f}" for v in values)
        used = statistics.median(cpu[name])
        print(f"{name:<15} {runs:<24} {median:8.1f} {median - base:16.1f} {used:6.1f}")
    return 0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    sys.exit(main())
