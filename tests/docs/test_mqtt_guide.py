"""docs/mqtt.md names only topics the contract module builds, and all of them."""

import re
from pathlib import Path

from paho.mqtt.client import topic_matches_sub

from schema import messages, topics

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"
MENTION = re.compile(r"smartvend/v1/[A-Za-z0-9_{}+#/-]+")
SAMPLE_MIDS = ("vm-0001", "m")


def _built() -> list[str]:
    out = [topics.SERVER_STATUS]
    for mid in SAMPLE_MIDS:
        for kind in topics.MACHINE_KINDS:
            cmd_id = "c1" if kind in topics.ID_KINDS else None
            out.append(topics.machine_topic(mid, kind, cmd_id))
    return out


def test_every_topic_in_the_guide_is_a_contract_topic_or_filter() -> None:
    built = _built()
    mentions = set(MENTION.findall(GUIDE.read_text(encoding="utf-8")))
    assert mentions
    for mention in mentions:
        concrete = mention.replace("{mid}", "m").replace("{cmd_id}", "c1")
        if "+" in concrete or "#" in concrete:
            assert any(topic_matches_sub(concrete, t) for t in built), mention
        else:
            topics.parse(concrete)  # raises SchemaError for a topic the contract lacks


def test_the_guide_lists_every_topic() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for kind in messages.KINDS:
        if kind == "server_status":
            template = topics.SERVER_STATUS
        else:
            cmd_id = "CMDID" if kind in topics.ID_KINDS else None
            template = topics.machine_topic("MID", kind, cmd_id)
            template = template.replace("/MID/", "/{mid}/").replace("CMDID", "{cmd_id}")
        assert f"`{template}`" in text, template
