"""ProductPicker against the embedded UCloud server, through a real Jupyter server's proxy."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from jupyter_ucloud import UCloud
from jupyter_ucloud.protocol import ProductReference
from jupyter_ucloud.widgets import ProductPicker


def ref(name: str) -> ProductReference:
    return ProductReference(id=name, category=name, provider="local")


def key(name: str) -> str:
    return f"local/{name}/{name}"


def test_lists_products_with_capabilities(uc: UCloud) -> None:
    picker = ProductPicker(uc)
    labels = {value: label for label, value in picker.dropdown.options}
    assert set(labels) == {key("compute-example"), key("batch-small"), key("compute-multi")}
    assert labels[key("batch-small")].endswith("[no terminal]")
    assert "[terminal, logs, time extension]" in labels[key("compute-multi")]
    assert "2 CPU · 4 GB" in labels[key("compute-multi")]
    assert picker.value == picker.products[0].product.reference
    assert picker.error.value == ""


def test_value_follows_the_dropdown_and_notifies(uc: UCloud) -> None:
    picker = ProductPicker(uc)
    seen: list[ProductReference | None] = []
    picker.observe(lambda change: seen.append(change["new"]), names="value")

    picker.dropdown.value = key("compute-multi")  # what the browser's choice syncs to
    assert picker.value == ref("compute-multi")
    assert seen == [ref("compute-multi")]
    assert picker.selected is not None
    assert picker.selected.supports_terminal
    assert "compute-multi" in picker.details.value
    assert "&#10003; terminal" in picker.details.value
    assert "&#10007; web" in picker.details.value

    picker.value = ref("batch-small")  # and the other way round
    assert picker.dropdown.value == key("batch-small")
    assert "&#10007; terminal" in picker.details.value
    assert seen == [ref("compute-multi"), ref("batch-small")]


def test_products_without_terminal_are_not_selectable_for_terminals(uc: UCloud) -> None:
    picker = ProductPicker(uc, terminal_required=True)
    assert key("batch-small") not in [value for _label, value in picker.dropdown.options]
    assert "batch-small (local)" in picker.unavailable.value
    assert "no terminal" in picker.unavailable.value
    with pytest.raises(TraitError, match=r"batch-small \(local\) does not support terminals"):
        picker.value = ref("batch-small")
    assert picker.value is not None
    assert picker.value != ref("batch-small")

    picker.terminal_required = False
    picker.value = ref("batch-small")
    assert picker.unavailable.value == ""


def test_unknown_product_is_refused(uc: UCloud) -> None:
    picker = ProductPicker(uc)
    with pytest.raises(TraitError, match="Unknown product local/nope/nope"):
        picker.value = ref("nope")


def test_error_line_shows_the_servers_answer(ucloud_jupyter_server) -> None:
    wrong = UCloud(jupyter_url=ucloud_jupyter_server.url, jupyter_token="not-the-token")
    picker = ProductPicker(wrong)
    assert picker.products == []
    assert picker.value is None
    assert "Could not load products" in picker.error.value
    assert "403" in picker.error.value
    assert "not-the-token" not in picker.error.value

    # Fixed credentials and Refresh: the products come, the error goes.
    picker._uc = UCloud(
        jupyter_url=ucloud_jupyter_server.url, jupyter_token=ucloud_jupyter_server.token
    )
    picker.refresh_button.click()
    assert picker.error.value == ""
    assert len(picker.products) == 3


def test_error_line_when_the_server_is_gone(unused_port: int) -> None:
    picker = ProductPicker(UCloud(jupyter_url=f"http://127.0.0.1:{unused_port}", jupyter_token="x"))
    assert "cannot reach the Jupyter server" in picker.error.value
    assert "Connection refused" in picker.error.value
