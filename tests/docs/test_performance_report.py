"""docs/performance.md can take one re-run section without losing the others."""

from tests.benchmarks.report import Section, Table, Target, merge, render


def section(title: str, figure: str, met: bool) -> Section:
    table = Table(["", "value"])
    table.add("figure", figure)
    return Section(
        title, f"About {title}.", [table], [Target(f"{title} target", "<= 1", figure, met)]
    )


def test_a_section_run_alone_replaces_its_old_self_and_keeps_the_rest() -> None:
    machine = {"Cores": "2", "Date": "2026-11-29 10:00 UTC"}
    page = render(machine, "full run", "python -m tests.benchmarks", [
        section("Broker", "0.5", True), section("Scale-out", "9", False)
    ], 60.0)  # fmt: skip
    merged = merge(page, [section("Scale-out", "0.8", True)], "Run: 2026-11-29 14:00 UTC.")
    assert merged.count("## Scale-out") == 1 and merged.count("## Broker") == 1
    assert "| figure | 0.5 |" in merged and "| figure | 0.8 |" in merged
    assert "| figure | 9 |" not in merged
    assert "| Scale-out target | <= 1 | 0.8 | yes |" in merged
    assert "Scale-out target | <= 1 | 9" not in merged
    assert "| Broker target | <= 1 | 0.5 | yes |" in merged
    assert "Run: 2026-11-29 14:00 UTC." in merged.split("## Scale-out")[1]
    assert "| Date | 2026-11-29 10:00 UTC |" in merged  # the page's own run, untouched
    added = merge(page, [section("New part", "1", True)], "Run: later.")
    assert added.index("## Scale-out") < added.index("## New part")
