"""The layout tells the architecture: ``api/``'s root holds its entry points and little else,
and every other module lives in a package named for what it is."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_ROOT_MAX = 8  # __init__, the composition root, the CLI, settings, errors, clock, money
PACKAGES = {
    "firmware": "firmware releases: manifests, keys, rollout rules, the CLI",
    "http": "HTTP routes and their edge",
    "infra": "database, change feed, leader election, migrations",
    "lifecycle": "the vend's rules, pure",
    "mqtt": "the MQTT side: bridge, ingest, drain, accounts",
    "observability": "metrics, logs, readiness",
    "payments": "payment gateways",
    "security": "identifiers and derived keys",
    "server": "how the server runs: runtime, workers, periodic work",
    "services": "vend writes and the operators' changes",
    "views": "read models: what pages and integrators are shown",
}


def test_the_api_root_holds_few_modules() -> None:
    modules = sorted(p.name for p in (ROOT / "api").glob("*.py"))
    assert len(modules) <= API_ROOT_MAX, modules


def test_every_api_package_is_one_of_the_named_rooms() -> None:
    found = {p.name for p in (ROOT / "api").iterdir() if (p / "__init__.py").exists()}
    assert found == set(PACKAGES), found ^ set(PACKAGES)
    for name in found:
        assert (ROOT / "api" / name / "__init__.py").read_text() == "", name
