"""Compute products and what they support (``jobs.retrieveProducts``).

Two product shapes parse into ``ComputeProduct``: the seed's (Kotlin ``Product.Compute``:
``chargeType``, ``unitOfPrice``, ``pricePerUnit``, ``productType``, ``id``, category
``{id, name, provider}``) and the current core's (Go ``ProductV2``: ``type: "compute"``,
``category.accountingUnit``, ``price``, ``fraction``). Fields of both are modelled and kept.

Support flags are Go ``omitempty`` bools: ``false`` is dropped on input (absent and false mean
the same), ``null`` is accepted and kept, so the seed's all-null backends round-trip and a
disabled backend built in Python serialises as ``{}``.
"""

from __future__ import annotations

from typing import Any

from pydantic import StrictBool, StrictFloat, StrictInt, model_validator

from .base import UCloudModel

__all__ = [
    "AccountingUnit",
    "BackendSupport",
    "ComputeProduct",
    "JobSupport",
    "ProductCategory",
    "ProductReference",
    "ProductsBrowseRequest",
    "ResolvedSupport",
    "SupportByProvider",
]


class ProductReference(UCloudModel):
    """``{id, category, provider}``: ``id`` is the product name, ``category`` the category name."""

    id: str
    category: str
    provider: str


class AccountingUnit(UCloudModel):
    name: str | None = None
    name_plural: str | None = None
    floating_point: StrictBool | None = None
    display_frequency_suffix: StrictBool | None = None


class ProductCategory(UCloudModel):
    """``ProductCategory`` (current core), or the seed's ``ProductCategoryId``."""

    id: str | None = None
    name: str | None = None
    provider: str | None = None
    product_type: str | None = None
    accounting_unit: AccountingUnit | None = None
    accounting_frequency: str | None = None
    free_to_use: StrictBool | None = None
    allow_sub_allocations: StrictBool | None = None


class ComputeProduct(UCloudModel):
    """A compute product (machine type) in either shape; see the module docstring."""

    # Current core (ProductV2)
    type: str | None = None
    name: str
    description: str | None = None
    category: ProductCategory
    product_type: str | None = None
    price: StrictInt | StrictFloat | None = None
    fraction: dict[str, Any] | None = None
    usage: Any = None
    # Both shapes
    cpu: StrictInt | None = None
    cpu_model: str | None = None
    memory_in_gigs: StrictInt | None = None
    memory_model: str | None = None
    gpu: StrictInt | None = None
    gpu_model: str | None = None
    hidden_in_grant_applications: StrictBool | None = None
    balance: StrictInt | StrictFloat | None = None
    max_usable_balance: StrictInt | StrictFloat | None = None
    price_per_unit: StrictInt | StrictFloat | None = None
    #: jupyter-ucloud's embedded server only (UCloud does not state it): the most nodes (ranks)
    #: a job on this product may have. Absent from UCloud's products.
    max_replicas: StrictInt | None = None
    # Seed (Kotlin Product.Compute)
    id: str | None = None
    charge_type: str | None = None
    unit_of_price: str | None = None
    version: StrictInt | None = None
    free_to_use: StrictBool | None = None
    priority: StrictInt | None = None
    allow_allocation_requests_from: str | None = None

    @property
    def category_name(self) -> str:
        return self.category.name or self.category.id or ""

    @property
    def provider(self) -> str:
        return self.category.provider or ""

    @property
    def reference(self) -> ProductReference:
        return ProductReference(
            id=self.name or self.id or "", category=self.category_name, provider=self.provider
        )


#: Python names of the backend flags, in UCloud's order.
BACKEND_FLAGS = (
    "enabled",
    "web",
    "vnc",
    "logs",
    "terminal",
    "peers",
    "time_extension",
    "bind_link_to_port",
    "suspension",
    "utilization",
)

#: Feature key flag name (``jobs.<backend>.<flag>``) for each Python flag name.
_FEATURE_FLAG = {
    "enabled": "enabled",
    "web": "web",
    "vnc": "vnc",
    "logs": "logs",
    "terminal": "terminal",
    "peers": "peers",
    "time_extension": "extension",
    "bind_link_to_port": "bindLinkToPort",
    "suspension": "suspension",
    "utilization": "utilization",
}


class BackendSupport(UCloudModel):
    """Flags of one backend (``UniversalBackendSupport``): ``true``, or absent/``null``."""

    enabled: StrictBool | None = None
    web: StrictBool | None = None
    vnc: StrictBool | None = None
    logs: StrictBool | None = None
    terminal: StrictBool | None = None
    peers: StrictBool | None = None
    time_extension: StrictBool | None = None
    bind_link_to_port: StrictBool | None = None
    suspension: StrictBool | None = None
    utilization: StrictBool | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_false_flags(cls, data: Any) -> Any:
        # omitempty: a false flag is the same as an absent one and is never written back.
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not False}
        return data

    def true_flags(self) -> list[str]:
        """Python names of the flags that are true."""
        return [flag for flag in BACKEND_FLAGS if getattr(self, flag) is True]


#: Feature key backend name for each ``JobSupport`` backend field.
_FEATURE_BACKEND = {"docker": "docker", "virtual_machine": "vm", "native": "native"}


class JobSupport(UCloudModel):
    """What a product supports per backend (``JobSupport``; seed: ``ComputeSupport``)."""

    product: ProductReference
    docker: BackendSupport | None = None
    virtual_machine: BackendSupport | None = None
    native: BackendSupport | None = None
    queue_status: str | None = None
    maintenance: dict[str, Any] | None = None

    def feature_keys(self) -> list[str]:
        """The flags as the core's sorted feature keys (``jobs.docker.terminal``, ...)."""
        keys = []
        for field, backend in _FEATURE_BACKEND.items():
            support: BackendSupport | None = getattr(self, field)
            if support is not None:
                keys += [f"jobs.{backend}.{_FEATURE_FLAG[flag]}" for flag in support.true_flags()]
        return sorted(keys)


class ResolvedSupport(UCloudModel):
    """A product with its support; ``features`` (current core) wins over the flags when present."""

    product: ComputeProduct
    support: JobSupport
    features: list[str] | None = None

    def feature_keys(self) -> list[str]:
        return list(self.features) if self.features is not None else self.support.feature_keys()

    def supports(self, flag: str, backend: str | None = None) -> bool:
        """Whether the feature ``flag`` (Python flag name, e.g. ``"terminal"``) is on.

        ``backend`` is ``docker``, ``vm`` or ``native``; ``None`` means any backend.
        """
        wanted = _FEATURE_FLAG.get(flag, flag)
        for key in self.feature_keys():
            _, _, rest = key.partition(".")
            key_backend, _, key_flag = rest.partition(".")
            if key_flag == wanted and backend in (None, key_backend):
                return True
        return False

    @property
    def supports_terminal(self) -> bool:
        return self.supports("terminal")

    @property
    def supports_logs(self) -> bool:
        return self.supports("logs")

    @property
    def supports_web(self) -> bool:
        return self.supports("web")

    @property
    def supports_vnc(self) -> bool:
        return self.supports("vnc")

    @property
    def supports_extension(self) -> bool:
        return self.supports("time_extension")

    @property
    def supports_peers(self) -> bool:
        return self.supports("peers")


class SupportByProvider(UCloudModel):
    """Answer of ``jobs.retrieveProducts``: provider id -> its products with support."""

    wire_always = ("products_by_provider",)

    products_by_provider: dict[str, list[ResolvedSupport]] = {}

    def all(self) -> list[ResolvedSupport]:
        return [item for items in self.products_by_provider.values() for item in items]

    def find(self, reference: ProductReference) -> ResolvedSupport | None:
        for item in self.products_by_provider.get(reference.provider, []):
            if item.support.product == reference or item.product.reference == reference:
                return item
        return None


class ProductsBrowseRequest(UCloudModel):
    """Query of ``GET /api/products/v2/browse`` (``products.v2.browse``, reference 5.3); the
    answer is a ``PageV2`` of products, one per item. ``next`` is ``<provider>@<category>@<name>``
    of the last item of the previous page."""

    items_per_page: StrictInt | None = None
    next: str | None = None
    filter_name: str | None = None
    filter_product_type: str | None = None
    filter_provider: str | None = None
    filter_category: str | None = None
    filter_usable: StrictBool | None = None
    include_balance: StrictBool | None = None
    include_max_balance: StrictBool | None = None
