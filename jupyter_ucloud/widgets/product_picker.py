"""Pick a compute product, seeing what each supports.

``ProductPicker(uc)`` lists ``uc.jobs.retrieve_products()``; :attr:`ProductPicker.value` is the
chosen :class:`~jupyter_ucloud.protocol.ProductReference` (observe it with
``picker.observe(callback, "value")``). With ``terminal_required=True`` products without terminal
support are listed apart and cannot be chosen.
"""

from __future__ import annotations

import html
from typing import Any

from ipywidgets import HTML, Button, Dropdown, HBox, Layout, VBox
from traitlets import Bool, Instance, List, TraitError, observe, validate

from ..protocol import ProductReference, ResolvedSupport, SupportByProvider
from ._display import capabilities_html, capabilities_of, error_html, machine_of
from ._errors import describe_error

__all__ = ["ProductPicker"]

NO_TERMINAL = "no terminal"


def _key(reference: ProductReference) -> str:
    return f"{reference.provider}/{reference.category}/{reference.id}"


def _option_label(item: ResolvedSupport) -> str:
    capabilities = capabilities_of(item)
    marks = ", ".join(capabilities) if "terminal" in capabilities else NO_TERMINAL
    machine = machine_of(item)
    return (
        f"{item.product.name} ({item.product.provider}) {machine + ' ' if machine else ''}[{marks}]"
    )


class ProductPicker(VBox):
    """A dropdown of products with their capabilities, a refresh button and an error line."""

    value = Instance(ProductReference, allow_none=True, help="the chosen product")
    products = List(Instance(ResolvedSupport), help="every product, as retrieveProducts answered")
    terminal_required = Bool(False, help="only products with terminal support can be chosen")

    def __init__(self, uc: Any, *, terminal_required: bool = False, **kwargs: Any) -> None:
        self._uc = uc
        self.dropdown = Dropdown(description="Product", layout=Layout(width="auto"))
        self.refresh_button = Button(description="Refresh", icon="refresh", tooltip="Reload")
        self.details = HTML()
        self.unavailable = HTML()
        self.error = HTML()
        super().__init__(
            children=[
                HBox([self.dropdown, self.refresh_button]),
                self.details,
                self.unavailable,
                self.error,
            ],
            **kwargs,
        )
        self.terminal_required = terminal_required
        self.dropdown.observe(self._on_dropdown, names="value")
        self.refresh_button.on_click(lambda _button: self.refresh())
        self.refresh()

    # -- public -------------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Reload the products; on failure show why on the error line and return False."""
        try:
            support: SupportByProvider = self._uc.jobs.retrieve_products()
        except Exception as exc:
            self.error.value = error_html(f"Could not load products: {describe_error(exc)}")
            return False
        self.error.value = ""
        self.products = support.all()
        return True

    @property
    def selected(self) -> ResolvedSupport | None:
        """The chosen product with its support, or None."""
        return self._find(self.value) if self.value is not None else None

    @property
    def selectable(self) -> list[ResolvedSupport]:
        """The products that may be chosen (all, or those with a terminal)."""
        if not self.terminal_required:
            return list(self.products)
        return [item for item in self.products if item.supports_terminal]

    # -- traits -------------------------------------------------------------------------------

    @validate("value")
    def _valid_value(self, proposal: dict[str, Any]) -> ProductReference | None:
        reference = proposal["value"]
        if reference is None:
            return None
        if isinstance(reference, dict):
            reference = ProductReference.model_validate(reference)
        item = self._find(reference)
        if item is None:
            raise TraitError(f"Unknown product {_key(reference)}")
        if self.terminal_required and not item.supports_terminal:
            raise TraitError(
                f"Product {item.product.name} ({item.product.provider}) does not support "
                "terminals; choose one that does"
            )
        return item.product.reference

    @observe("products", "terminal_required")
    def _on_products(self, _change: Any) -> None:
        choices = self.selectable
        keep = self.value if self.value is not None and self._find(self.value) in choices else None
        self.dropdown.options = [
            (_option_label(item), _key(item.product.reference)) for item in choices
        ]
        if keep is None and choices:
            keep = choices[0].product.reference
        self.value = keep
        self.dropdown.value = _key(keep) if keep is not None else None
        without = [item for item in self.products if not item.supports_terminal]
        if self.terminal_required and without:
            names = ", ".join(
                f"{html.escape(item.product.name)} ({html.escape(item.product.provider)})"
                for item in without
            )
            self.unavailable.value = f"<i>Not selectable, {NO_TERMINAL}:</i> {names}"
        else:
            self.unavailable.value = ""
        if not choices:
            self.details.value = "<i>No product to choose from.</i>"
        self._show_details()

    @observe("value")
    def _on_value(self, change: Any) -> None:
        new = change["new"]
        key = _key(new) if new is not None else None
        if self.dropdown.value != key:
            self.dropdown.value = key
        self._show_details()

    def _on_dropdown(self, change: Any) -> None:
        key = change["new"]
        item = next((i for i in self.products if _key(i.product.reference) == key), None)
        self.value = item.product.reference if item is not None else None

    # -- helpers ------------------------------------------------------------------------------

    def _find(self, reference: ProductReference) -> ResolvedSupport | None:
        for item in self.products:
            if item.product.reference == reference or item.support.product == reference:
                return item
        return None

    def _show_details(self) -> None:
        item = self.selected
        if item is not None:
            self.details.value = capabilities_html(item)
        elif self.selectable:
            self.details.value = ""
