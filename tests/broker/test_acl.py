"""broker.acl.allowed, table-driven (CONTRACT section 1)."""

import pytest

from broker.acl import allowed, is_valid_filter
from broker.principals import Principal

A = Principal("machine", "A")
B = Principal("machine", "B")
ACME = Principal("integrator", "acme")
SRV = Principal("server", "srv")
BAD_MACHINE = Principal("machine", "not/an id")
ODD_ROLE = Principal("admin", "root")

M = "smartvend/v1/machines"
ALLOW, DENY = True, False

CASES = [
    # machine A publishes its own device topics only
    (A, "publish", f"{M}/A/status", ALLOW),
    (A, "publish", f"{M}/A/reported", ALLOW),
    (A, "publish", f"{M}/A/telemetry", ALLOW),
    (A, "publish", f"{M}/A/events", ALLOW),
    (A, "publish", f"{M}/A/results/cmd-1", ALLOW),
    (A, "publish", f"{M}/A/results", DENY),
    (A, "publish", f"{M}/A/results/cmd-1/x", DENY),
    (A, "publish", f"{M}/A/desired", DENY),
    (A, "publish", f"{M}/A/cmd/cmd-1", DENY),
    (A, "publish", f"{M}/A/state", DENY),
    (A, "publish", f"{M}/A/sales", DENY),
    (A, "publish", f"{M}/B/status", DENY),
    (A, "publish", f"{M}/B/results/cmd-1", DENY),
    (A, "publish", "smartvend/v1/server/status", DENY),
    (A, "publish", f"{M}/A/status/extra", DENY),
    (A, "publish", "$SYS/x", DENY),
    (A, "publish", f"{M}/+/status", DENY),
    (A, "publish", "", DENY),
    # machine A receives its own desired, commands and the server status
    (A, "receive", f"{M}/A/desired", ALLOW),
    (A, "receive", f"{M}/A/cmd/cmd-1", ALLOW),
    (A, "receive", "smartvend/v1/server/status", ALLOW),
    (A, "receive", f"{M}/A/status", DENY),
    (A, "receive", f"{M}/A/results/cmd-1", DENY),
    (A, "receive", f"{M}/A/state", DENY),
    (A, "receive", f"{M}/B/desired", DENY),
    (A, "receive", f"{M}/B/cmd/cmd-1", DENY),
    (A, "receive", "$SYS/broker/uptime", DENY),
    (A, "subscribe", f"{M}/A/desired", ALLOW),
    (A, "subscribe", f"{M}/A/cmd/+", ALLOW),
    (A, "subscribe", f"{M}/A/cmd/cmd-1", ALLOW),
    (A, "subscribe", "smartvend/v1/server/status", ALLOW),
    (A, "subscribe", f"{M}/A/cmd/#", DENY),
    (A, "subscribe", f"{M}/A/#", DENY),
    (A, "subscribe", f"{M}/A/+", DENY),
    (A, "subscribe", f"{M}/+/desired", DENY),
    (A, "subscribe", f"{M}/+/cmd/+", DENY),
    (A, "subscribe", f"{M}/#", DENY),
    (A, "subscribe", "smartvend/v1/#", DENY),
    (A, "subscribe", "#", DENY),
    (A, "subscribe", "+/v1/server/status", DENY),
    (A, "subscribe", "smartvend/v1/server/+", DENY),
    (A, "subscribe", f"{M}/B/desired", DENY),
    (A, "subscribe", "$SYS/#", DENY),
    (A, "subscribe", f"{M}/A/cmd/a+", DENY),
    (A, "subscribe", f"{M}/A/#/x", DENY),
    (B, "receive", f"{M}/B/desired", ALLOW),
    (B, "receive", f"{M}/A/desired", DENY),
    (B, "subscribe", f"{M}/A/cmd/+", DENY),
    (B, "publish", f"{M}/A/status", DENY),
    (B, "publish", f"{M}/B/status", ALLOW),
    # integrator: read-only, never desired/cmd/results
    (ACME, "publish", f"{M}/A/status", DENY),
    (ACME, "publish", f"{M}/A/state", DENY),
    (ACME, "publish", "smartvend/v1/server/status", DENY),
    (ACME, "receive", f"{M}/A/status", ALLOW),
    (ACME, "receive", f"{M}/B/state", ALLOW),
    (ACME, "receive", f"{M}/A/telemetry", ALLOW),
    (ACME, "receive", f"{M}/A/events", ALLOW),
    (ACME, "receive", f"{M}/A/sales", ALLOW),
    (ACME, "receive", "smartvend/v1/server/status", ALLOW),
    (ACME, "receive", f"{M}/A/desired", DENY),
    (ACME, "receive", f"{M}/A/cmd/cmd-1", DENY),
    (ACME, "receive", f"{M}/A/results/cmd-1", DENY),
    (ACME, "receive", f"{M}/A/reported", DENY),
    (ACME, "subscribe", f"{M}/+/state", ALLOW),
    (ACME, "subscribe", f"{M}/+/status", ALLOW),
    (ACME, "subscribe", f"{M}/A/sales", ALLOW),
    (ACME, "subscribe", f"{M}/+/+", DENY),
    (ACME, "subscribe", f"{M}/A/+", DENY),
    (ACME, "subscribe", f"{M}/#", DENY),
    (ACME, "subscribe", "smartvend/v1/#", DENY),
    (ACME, "subscribe", f"{M}/+/desired", DENY),
    (ACME, "subscribe", f"{M}/+/cmd/+", DENY),
    (ACME, "subscribe", f"{M}/+/results/+", DENY),
    (ACME, "subscribe", "#", DENY),
    (ACME, "subscribe", "$SYS/#", DENY),
    # server: everything except publishing to $ topics
    (SRV, "publish", f"{M}/A/desired", ALLOW),
    (SRV, "publish", f"{M}/A/cmd/cmd-1", ALLOW),
    (SRV, "publish", "anything/else", ALLOW),
    (SRV, "publish", "$SYS/x", DENY),
    (SRV, "publish", f"{M}/+/desired", DENY),
    (SRV, "subscribe", "#", ALLOW),
    (SRV, "subscribe", "$SYS/#", ALLOW),
    (SRV, "subscribe", f"{M}/+/results/+", ALLOW),
    (SRV, "subscribe", "a/#/b", DENY),
    (SRV, "receive", f"{M}/A/results/cmd-1", ALLOW),
    (SRV, "receive", "$SYS/broker/uptime", ALLOW),
    # broken principals and actions
    (BAD_MACHINE, "publish", f"{M}/A/status", DENY),
    (BAD_MACHINE, "subscribe", "smartvend/v1/server/status", DENY),
    (ODD_ROLE, "receive", "smartvend/v1/server/status", DENY),
    (SRV, "delete", f"{M}/A/status", DENY),
]


@pytest.mark.parametrize(("principal", "action", "topic", "expected"), CASES)
def test_allowed(principal: Principal, action: str, topic: str, expected: bool) -> None:
    assert allowed(principal, action, topic) is expected


@pytest.mark.parametrize(
    ("topic_filter", "valid"),
    [
        ("#", True),
        ("a/+/b", True),
        ("a/#", True),
        ("+", True),
        ("", False),
        ("a/#/b", False),
        ("a#", False),
        ("a/b+", False),
        ("a/\x00", False),
    ],
)
def test_filter_syntax(topic_filter: str, valid: bool) -> None:
    assert is_valid_filter(topic_filter) is valid
