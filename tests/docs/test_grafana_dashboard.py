"""docs/grafana/smartvend-dashboard.json charts the metrics the server exposes, all of them."""

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from api.observability import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "smartvend-dashboard.json"
NAME = re.compile(r"\bsmartvend_[a-z_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def exposed() -> set[str]:
    """Every metric family the server defines (labels need values to show samples)."""
    return {family.name for family in metrics.REGISTRY.collect()}


def family_of(series: str, families: set[str]) -> str | None:
    for suffix in ("", *SUFFIXES):
        if series.endswith(suffix) and series.removesuffix(suffix) in families:
            return series.removesuffix(suffix) if suffix else series
    return None


def test_every_panel_queries_defined_metrics_and_every_metric_is_charted() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    families = exposed()
    assert len(families) >= 11
    charted: set[str] = set()
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = NAME.findall(target["expr"])
            assert names, target
            for name in names:
                family = family_of(name, families)
                assert family is not None, f"{panel['title']}: {name} is not a SmartVend metric"
                charted.add(family)
    assert charted == families


def test_the_exposition_parses() -> None:
    text = metrics.exposition().decode()
    assert {f.name for f in text_string_to_metric_families(text)} >= {"smartvend_leader"}
