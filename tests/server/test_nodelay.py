"""Both legs of a shell send small frames at once (TCP_NODELAY): no Nagle + delayed-ACK wait."""

from __future__ import annotations

import socket
import time

from .conftest import Api


def _nodelay(sock) -> bool:
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


async def test_both_legs_have_nodelay_and_bursts_are_not_held_back(
    api: Api, connect, jp_serverapp
) -> None:
    job_id = await api.start_job()
    model = await api.open_shell(job_id)
    term = await connect(model["name"])
    await term.wait_ready()

    shell = jp_serverapp.web_app.settings["ucloud_shells"].get(model["name"])
    (client,) = shell.clients
    assert _nodelay(client.sink.ws_connection.stream.socket)  # browser leg (server side)
    assert _nodelay(shell._leg._ws.socket)  # provider leg (client side)

    # Two small outputs 5 ms apart become two frames; without TCP_NODELAY the second waits
    # for the ACK of the first, which the receiver delays (~40 ms).
    gaps = []
    for i in range(7):
        await term.run(f"printf 'a{i}-''x'; sleep 0.005; printf 'b{i}-''y'")
        await term.wait_for_text(f"a{i}-x")
        first = time.monotonic()
        await term.wait_for_text(f"b{i}-y")
        gaps.append(time.monotonic() - first)
    assert sorted(gaps)[3] < 0.03, gaps
    term.close()
    await api.terminate(job_id)
