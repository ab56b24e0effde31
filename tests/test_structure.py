"""The package's import structure: no cycles, and the core never reaches an adapter."""

from __future__ import annotations

import grimp
import pytest

PACKAGE = "automl_service"

#: Modules that hold the service's logic and contracts, free of any backend.
CORE = (
    "request",
    "selection",
    "promotion",
    "metrics",
    "scan",
    "results",
    "runs",
    "errors",
    "backoff",
    "engines.base",
    "queues.base",
    "settings",
    "stats",
    "worker",
    "redact",
    "tags",
    "settle",
    "exit_codes",
    "policy",
    "fingerprint",
    "sqlite_db",
    "waiting",
    "control",
    "readiness",
    "http_json",
)

#: The backends' adapters, inside the package.
ADAPTERS = (
    "automl_service.engines.local",
    "automl_service.engines.azure",
    "automl_service.queues.sqlite",
    "automl_service.queues.azure_storage",
)

#: Third-party packages only adapters may use (grimp names an external package by its
#: top-level name).
ADAPTER_LIBRARIES = ("mlflow", "azure", "flaml", "sklearn", "pandas")


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    """The package's import graph, imports made only for type checking included."""
    return grimp.build_graph(PACKAGE, include_external_packages=True)


def test_no_import_cycles() -> None:
    """No module of the package imports, directly or not, a module that imports it back
    (imports made only for type checking aside)."""
    runtime = grimp.build_graph(PACKAGE, exclude_type_checking_imports=True)
    cycles = sorted(
        (importer, imported)
        for importer in runtime.modules
        for imported in runtime.find_modules_directly_imported_by(importer)
        if runtime.chain_exists(importer=imported, imported=importer)
    )
    assert cycles == [], "import cycles through: " + ", ".join(f"{a} -> {b}" for a, b in cycles)


@pytest.mark.parametrize("name", CORE)
def test_core_module_never_reaches_an_adapter(graph: grimp.ImportGraph, name: str) -> None:
    """A core module imports no adapter and no backend library, directly or through
    another module."""
    module = f"{PACKAGE}.{name}"
    assert module in graph.modules, f"{module} is not in the package any more"
    upstream = graph.find_upstream_modules(module)
    reached = sorted(
        m
        for m in upstream
        if m in ADAPTER_LIBRARIES or any(m == a or m.startswith(a + ".") for a in ADAPTERS)
    )
    chains = {m: graph.find_shortest_chain(importer=module, imported=m) for m in reached}
    assert reached == [], f"{module} reaches adapters: {chains}"


def test_the_graph_sees_third_party_imports(graph: grimp.ImportGraph) -> None:
    """The boundary check is not vacuous: external packages are in the graph, and the
    adapters are seen importing theirs."""
    assert "pydantic" in graph.find_upstream_modules(f"{PACKAGE}.settings")
    assert "mlflow" in graph.find_upstream_modules(f"{PACKAGE}.engines.local.registry")
    assert "azure" in graph.find_upstream_modules(f"{PACKAGE}.queues.azure_storage")
