"""Provider frames larger than the replay buffer: a client that keeps up loses nothing.

The embedded provider sends up to 64 KiB per frame; a real provider may send more. The replay
buffer's byte limit bounds what is kept *for reattaching*, not what a connected client has yet
to receive."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import Api


@pytest.fixture
def ucloud_config(local_server: Any) -> dict[str, Any]:
    return {
        "host": local_server.url,
        "credentials_file": str(local_server.data_dir / "refresh_token"),
        "replay_bytes": 16384,  # a quarter of one provider frame
        "request_timeout": 10.0,
    }


async def test_bulk_output_arrives_whole_with_a_small_replay_buffer(api: Api, connect) -> None:
    job_id = await api.start_job()
    model = await api.open_shell(job_id)
    term = await connect(model["name"])
    await term.wait_ready()
    size = 3_000_000
    await term.run(f"head -c {size} /dev/zero | tr '\\0' a; echo; echo END$((7*6))")
    await term.wait_for_text("END42", timeout=60)
    assert "output skipped" not in term.output
    assert term.output.count("a") - term.output.count("a", 0, term.output.index("head -c")) >= size
    offsets = [frame[2] - len(frame[1]) for frame in term.frames if frame[0] == "stdout"][1:]
    ends = [frame[2] for frame in term.frames if frame[0] == "stdout"][:-1]
    assert offsets == ends  # every frame starts where the previous one ended: no gap
    term.close()
    await api.terminate(job_id)
