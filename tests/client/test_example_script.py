"""examples/seed_flow.py as a user runs it: a plain script, a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed_flow.py"


def test_seed_flow_script_against_the_embedded_server(local_server: Any) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--host",
            local_server.url,
            "--refresh-token-file",
            str(local_server.data_dir / "refresh_token"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "   hello_world.txt" in lines
    assert any(line.startswith("1. jobs.retrieveProducts") for line in lines)
    assert any("terminal supported" in line for line in lines)
    assert any(line.startswith("6. jobs.terminate(") for line in lines)
    assert local_server.refresh_token not in done.stdout + done.stderr


def test_seed_flow_script_reports_errors_clearly(local_server: Any, tmp_path: Path) -> None:
    bad = tmp_path / "token"
    bad.write_text("00" * 32)
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--host",
            local_server.url,
            "--refresh-token-file",
            str(bad),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: auth.refresh: 401 the refresh token was refused")
