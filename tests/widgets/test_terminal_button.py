"""OpenTerminalButton: what the labextension's view gets, and what it may report back."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from jupyter_ucloud.widgets import OpenTerminalButton


def front_end_message(widget: OpenTerminalButton, content: object) -> None:
    """Deliver a custom message the way a comm message from the browser arrives."""
    widget._handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def test_points_at_the_labextension_module() -> None:
    state = OpenTerminalButton("42", rank=1).get_state()
    assert state["_model_name"] == "OpenTerminalButtonModel"
    assert state["_view_name"] == "OpenTerminalButtonView"
    assert state["_model_module"] == state["_view_module"] == "jupyter-ucloud"
    assert state["_model_module_version"] == state["_view_module_version"] == "^0.1.0"


def test_synced_traits() -> None:
    button = OpenTerminalButton("42", rank=3, label="Rank 3")
    state = button.get_state()
    assert (state["job_id"], state["rank"], state["label"]) == ("42", 3, "Rank 3")
    assert state["disabled"] is False
    assert state["tooltip"] == "Open a terminal on rank 3 of job 42"
    button.rank = 0
    assert button.get_state()["tooltip"] == "Open a terminal on rank 0 of job 42"


def test_rejects_a_negative_rank() -> None:
    with pytest.raises(TraitError, match="rank must be 0 or more, not -1"):
        OpenTerminalButton("42", rank=-1)
    button = OpenTerminalButton("42")
    with pytest.raises(TraitError):
        button.rank = -5
    assert button.rank == 0


def test_front_end_events() -> None:
    button = OpenTerminalButton("42", rank=1)
    opened: list[str] = []
    errors: list[str] = []
    button.on_opened(lambda _b, name: opened.append(name))
    button.on_error(lambda _b, message: errors.append(message))

    front_end_message(button, {"event": "error", "message": "Job 42 is not running"})
    assert (button.last_event, button.error) == ("error", "Job 42 is not running")
    assert errors == ["Job 42 is not running"]

    front_end_message(button, {"event": "opened", "name": "ucloud-42-1-0123abcd"})
    assert (button.last_event, button.error) == ("opened", "")
    assert opened == ["ucloud-42-1-0123abcd"]

    # Anything else from the browser is ignored, never raised.
    for junk in ("text", ["event"], {"event": "unknown"}, {"event": "error", "message": None}):
        front_end_message(button, junk)
    assert button.error == "the terminal could not be opened"
    assert opened == ["ucloud-42-1-0123abcd"]
