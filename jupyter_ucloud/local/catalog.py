"""What the embedded provider offers, as UCloud's wire types: products with their support
(``jobs.retrieveProducts``) and applications (``status.resolvedApplication``, the app browser)."""

from __future__ import annotations

from typing import Any

from ..protocol import (
    AccountingUnit,
    Application,
    ApplicationMetadata,
    BackendSupport,
    ComputeProduct,
    JobSupport,
    ProductCategory,
    ProductReference,
    ResolvedSupport,
    SupportByProvider,
)
from .config import ApplicationSpec, LocalConfig, ProductSpec

__all__ = ["BACKENDS_WITH_LOGS", "Catalog"]

#: Backends that capture each rank's stdout and stderr (``rank-<r>.out/.err``) for
#: ``jobs.follow``: their products advertise ``logs``.
BACKENDS_WITH_LOGS = frozenset({"process", "slurm"})

_UCLOUD_PARAMETER_TYPES = {
    "text": "text",
    "integer": "integer",
    "floating_point": "floating_point",
    "boolean": "boolean",
    "enumeration": "enumeration",
}


class Catalog:
    """The configured products and applications, built once into protocol models."""

    def __init__(self, config: LocalConfig) -> None:
        self.provider_id = config.provider_id
        self._config = config
        self._support = {p.name: self._resolved_support(p) for p in config.products}
        self._applications = {
            (a.name, a.version): self._application(a) for a in config.applications
        }

    def support_by_provider(self) -> SupportByProvider:
        return SupportByProvider(
            products_by_provider={self.provider_id: list(self._support.values())}
        )

    def find_product(
        self, reference: ProductReference
    ) -> tuple[ProductSpec, ResolvedSupport] | None:
        """The product a job asks for, if this provider has it (provider, name and category)."""
        if reference.provider != self.provider_id:
            return None
        spec = self._config.product(reference.id)
        if spec is None or spec.category != reference.category:
            return None
        return spec, self._support[spec.name]

    def products(self) -> list[ComputeProduct]:
        """Every product, ordered as ``products.v2.browse`` walks them: by provider, then
        category, then name."""
        products = [support.product for support in self._support.values()]
        return sorted(products, key=lambda p: (p.provider, p.category_name, p.name))

    def resolved_support(self, product_name: str) -> ResolvedSupport | None:
        return self._support.get(product_name)

    def application(self, name: str, version: str) -> Application | None:
        return self._applications.get((name, version))

    def applications(self) -> list[Application]:
        return list(self._applications.values())

    # --- building --------------------------------------------------------------------------

    def _resolved_support(self, spec: ProductSpec) -> ResolvedSupport:
        reference = ProductReference(
            id=spec.name, category=spec.category, provider=self.provider_id
        )
        product = ComputeProduct(
            type="compute",
            category=ProductCategory(
                name=spec.category,
                provider=self.provider_id,
                product_type="COMPUTE",
                accounting_unit=AccountingUnit(
                    name="Core",
                    name_plural="Cores",
                    floating_point=False,
                    display_frequency_suffix=True,
                ),
                accounting_frequency="PERIODIC_MINUTE",
                free_to_use=True,
            ),
            name=spec.name,
            description=spec.description,
            product_type="COMPUTE",
            price=spec.price,
            fraction={"numerator": 1, "denominator": 1},
            hidden_in_grant_applications=False,
            usage=None,
            cpu=spec.cpu,
            memory_in_gigs=spec.memory_in_gigs,
            balance=0,
            max_usable_balance=0,
            price_per_unit=0,
            max_replicas=spec.max_replicas,
        )
        if spec.gpu:
            product.gpu = spec.gpu
        flags: dict[str, bool] = {"enabled": True}
        if spec.terminal:
            flags["terminal"] = True
        if spec.time_extension:
            flags["time_extension"] = True
        if self._config.backend in BACKENDS_WITH_LOGS:
            flags["logs"] = True
        backends = {
            "docker": BackendSupport(),
            "virtual_machine": BackendSupport(),
            "native": BackendSupport(),
        }
        backends[spec.backend] = BackendSupport(**flags)
        support = JobSupport(product=reference, queue_status=None, **backends)
        return ResolvedSupport(product=product, support=support, features=support.feature_keys())

    def _application(self, spec: ApplicationSpec) -> Application:
        parameters: list[dict[str, Any]] = []
        for p in spec.parameters:
            default = None if p.default is None else {"type": p.value_type, "value": p.default}
            parameter: dict[str, Any] = {
                "type": _UCLOUD_PARAMETER_TYPES[p.type],
                "name": p.name,
                "optional": p.optional,
                "defaultValue": default,
                "title": p.title or p.name,
                "description": p.description,
            }
            if p.type == "enumeration":
                parameter["options"] = [{"name": o.name, "value": o.value} for o in p.options]
            parameters.append(parameter)
        return Application(
            metadata=ApplicationMetadata(
                name=spec.name,
                version=spec.version,
                title=spec.title or spec.name,
                description=spec.description,
                authors=["jupyter-ucloud"],
                public=True,
                flavorName=None,
                group=None,
                createdAt=0,
            ),
            invocation={
                "tool": {
                    "name": spec.name,
                    "version": spec.version,
                    "tool": {"description": {"backend": spec.backend, "title": spec.title}},
                },
                "applicationType": "BATCH",
                "parameters": parameters,
                "container": {
                    "changeWorkingDirectory": True,
                    "runAsRoot": False,
                    "runAsRealUser": True,
                },
                "ssh": {"mode": "DISABLED"},
                "web": None,
                "vnc": None,
                "interactive": spec.kind == "interactive",
            },
            favorite=None,
            versions=None,
        )
