"""jobs.retrieveProducts: both product shapes, support flags, features, round trips."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from jupyter_ucloud.protocol import (
    BackendSupport,
    ComputeProduct,
    JobSupport,
    ProductReference,
    ResolvedSupport,
    SupportByProvider,
)


def test_seed_products_parse(example):
    products = SupportByProvider.model_validate(example("seed_retrieve_products"))
    assert list(products.products_by_provider) == ["example"]
    [item] = products.all()
    product = item.product
    assert product.name == "compute-example"
    assert product.cpu == 1
    assert product.memory_in_gigs == 2
    assert product.gpu == 0
    assert product.price_per_unit == 1_000_000
    assert product.charge_type == "ABSOLUTE"
    assert product.unit_of_price == "CREDITS_PER_MINUTE"
    assert product.product_type == "COMPUTE"
    assert product.free_to_use is False
    assert product.type is None
    assert product.category_name == "compute-example"
    assert product.provider == "example"
    assert product.reference == ProductReference(
        id="compute-example", category="compute-example", provider="example"
    )
    assert item.support.docker is not None
    assert item.support.docker.enabled is True
    assert item.support.docker.terminal is True
    assert item.support.docker.web is None
    assert item.support.virtual_machine == BackendSupport()
    assert item.support.maintenance is None
    assert item.features is None
    assert item.feature_keys() == ["jobs.docker.enabled", "jobs.docker.terminal"]
    assert item.supports_terminal
    assert not item.supports_web
    assert not item.supports_vnc
    assert not item.supports_logs
    assert not item.supports_extension
    assert not item.supports_peers


def test_core_products_parse(example):
    products = SupportByProvider.model_validate(example("core_retrieve_products"))
    [item] = products.products_by_provider["k8s"]
    product = item.product
    assert product.type == "compute"
    assert product.name == "u1-standard-2"
    assert product.price == 2
    assert product.fraction == {"numerator": 1, "denominator": 1}
    assert product.cpu == 2
    assert product.memory_in_gigs == 8
    assert product.category.accounting_unit is not None
    assert product.category.accounting_unit.name_plural == "Cores"
    assert product.category.accounting_frequency == "PERIODIC_MINUTE"
    assert product.category.allow_sub_allocations is True
    assert product.reference == item.support.product
    assert item.support.docker == BackendSupport(
        enabled=True, web=True, vnc=True, logs=True, terminal=True, peers=True, time_extension=True
    )
    assert item.support.virtual_machine == BackendSupport()
    assert item.support.queue_status is None
    assert item.features is not None
    assert "jobs.docker.extension" in item.features
    assert item.supports_terminal
    assert item.supports_web
    assert item.supports_vnc
    assert item.supports_logs
    assert item.supports_extension
    assert item.supports_peers
    assert item.supports("terminal", backend="docker")
    assert not item.supports("terminal", backend="vm")
    # The flags and the features agree on this example.
    assert item.support.feature_keys() == sorted(item.features)


@pytest.mark.parametrize("name", ["seed_retrieve_products", "core_retrieve_products"])
def test_products_round_trip_exactly(example, name):
    raw = example(name)
    parsed = SupportByProvider.model_validate(raw)
    assert parsed.to_wire() == raw
    assert SupportByProvider.model_validate(parsed.to_wire()) == parsed


def test_find_by_reference(example):
    products = SupportByProvider.model_validate(example("core_retrieve_products"))

    def ref(id: str, category: str, provider: str) -> ProductReference:
        return ProductReference(id=id, category=category, provider=provider)

    found = products.find(ref("u1-standard-2", "u1-standard", "k8s"))
    assert found is not None
    assert found.product.name == "u1-standard-2"
    assert products.find(ref("nope", "u1-standard", "k8s")) is None
    assert products.find(ref("u1-standard-2", "x", "k8s")) is None
    assert products.find(ref("u1-standard-2", "u1-standard", "x")) is None


def test_false_flags_are_absent_on_output():
    support = BackendSupport.model_validate({"enabled": True, "web": False, "vnc": None})
    assert support.web is None
    assert support.to_wire() == {"enabled": True, "vnc": None}
    assert BackendSupport.model_validate(support.to_wire()) == support
    assert BackendSupport(enabled=False, terminal=False).to_wire() == {}
    built = JobSupport(
        product=ProductReference(id="p", category="c", provider="local"),
        docker=BackendSupport(enabled=True, terminal=True, logs=False),
        virtual_machine=BackendSupport(),
        native=BackendSupport(enabled=False),
    )
    assert built.to_wire() == {
        "product": {"id": "p", "category": "c", "provider": "local"},
        "docker": {"enabled": True, "terminal": True},
        "virtualMachine": {},
        "native": {},
    }


def test_features_win_over_flags():
    resolved = ResolvedSupport.model_validate(
        {
            "product": {"name": "p", "category": {"name": "c", "provider": "x"}},
            "support": {
                "product": {"id": "p", "category": "c", "provider": "x"},
                "docker": {"enabled": True, "terminal": True},
            },
            "features": ["jobs.docker.enabled", "jobs.vm.vnc"],
        }
    )
    assert not resolved.supports_terminal
    assert resolved.supports_vnc
    assert resolved.supports("vnc", backend="vm")
    assert not resolved.supports("vnc", backend="docker")
    without_features = {**resolved.to_wire(), "features": None}
    assert ResolvedSupport.model_validate(without_features).supports_terminal


def test_unknown_fields_are_ignored(example):
    raw = example("core_retrieve_products")
    noisy = copy.deepcopy(raw)
    noisy["somethingNew"] = 1
    item = noisy["productsByProvider"]["k8s"][0]
    item["newTopLevel"] = {"a": 1}
    item["product"]["newProductField"] = [1, 2]
    item["product"]["category"]["newCategoryField"] = "x"
    item["support"]["docker"]["teleport"] = True
    item["support"]["maintenance2"] = None
    parsed = SupportByProvider.model_validate(noisy)
    assert parsed == SupportByProvider.model_validate(raw)
    assert parsed.to_wire() == raw


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("product", "cpu"), "two"),
        (("product", "cpu"), 2.5),
        (("product", "memoryInGigs"), "8"),
        (("product", "name"), 7),
        (("product", "category"), "u1-standard"),
        (("support", "docker", "terminal"), "yes"),
        (("support", "docker", "terminal"), 1),
        (("support", "product", "id"), 12),
        (("features",), "jobs.docker.terminal"),
    ],
)
def test_wrong_types_are_rejected(example, path, value):
    raw = example("core_retrieve_products")
    target = raw["productsByProvider"]["k8s"][0]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError):
        SupportByProvider.model_validate(raw)


def test_missing_required_fields_are_rejected():
    with pytest.raises(ValidationError):
        ComputeProduct.model_validate({"category": {"name": "c"}})
    with pytest.raises(ValidationError):
        JobSupport.model_validate({"docker": {}})
