"""Products, applications and the provider id come from a config file (JSON or TOML)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from jupyter_ucloud.local.config import EnumOptionSpec, ParameterSpec
from jupyter_ucloud.protocol import SupportByProvider

from .conftest import api_for

TOML = """
provider_id = "mine"
username = "alice"

[[products]]
name = "big"
cpu = 8
memory_in_gigs = 32
max_replicas = 2
time_extension = true

[[applications]]
name = "echo"
version = "2"
kind = "batch"
command = ["/bin/sh", "-c", "echo {word} > said.txt"]
parameters = [{ name = "word", type = "text" }]
"""


def test_toml_config(fresh_local_server) -> None:
    server = fresh_local_server
    server.stop()
    server.config_file = server.data_dir / "provider.toml"
    server.config_file.write_text(TOML)
    (server.data_dir / "refresh_token").unlink()  # a new user gets a new token
    server.start()
    assert server.provider_id == "mine"
    api = api_for(server)
    products = SupportByProvider.model_validate(api.ok("jobs.retrieveProducts"))
    assert list(products.products_by_provider) == ["mine"]
    (big,) = products.all()
    assert big.product.cpu == 8
    assert big.features == [
        "jobs.docker.enabled",
        "jobs.docker.extension",
        "jobs.docker.logs",
        "jobs.docker.terminal",
    ]

    reference = {"id": "big", "category": "big", "provider": "mine"}
    (job_id,) = api.create(
        {
            "application": {"name": "echo", "version": "2"},
            "product": reference,
            "replicas": 2,
            "parameters": {"word": {"type": "text", "value": "hello"}},
        }
    )
    job = api.wait_for_state(job_id, "SUCCESS", "FAILURE")
    assert job.state.value == "SUCCESS"
    assert job.owner.created_by == "alice"
    for rank in (0, 1):
        said = server.data_dir / "jobs" / job_id / f"rank-{rank}" / "said.txt"
        assert said.read_text() == "hello\n"

    # The configured applications replace the defaults.
    response = api.call(
        "jobs.create",
        {"items": [{"application": {"name": "terminal", "version": "1"}, "product": reference}]},
    )
    assert response.status_code == 400
    assert response.json()["why"] == "Unknown application requested"


def test_invalid_config_is_a_clear_error(tmp_path) -> None:
    config = tmp_path / "bad.json"
    config.write_text('{"products": [{"name": "x", "cpu": "many"}], "colour": "blue"}')
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "jupyter_ucloud",
            "local",
            "--data-dir",
            str(tmp_path / "d"),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert "cpu" in result.stderr
    assert "colour" in result.stderr
    assert "Traceback" not in result.stderr


def test_enumeration_parameters_need_options_and_a_default_among_them() -> None:
    choice = [EnumOptionSpec(name="small", value="s"), EnumOptionSpec(name="large", value="l")]
    assert ParameterSpec(
        name="size", type="enumeration", options=choice, default="l"
    ).value_type == ("text")
    with pytest.raises(ValidationError, match="needs options"):
        ParameterSpec(name="size", type="enumeration")
    with pytest.raises(ValidationError, match="is not one of its options"):
        ParameterSpec(name="size", type="enumeration", options=choice, default="m")
    with pytest.raises(ValidationError, match="only enumeration parameters have options"):
        ParameterSpec(name="size", type="text", options=choice)
