"""Who may publish, subscribe to and receive which topic (CONTRACT section 1).

Pure policy, no I/O. Each role's rights are a list of *patterns*: subscription
filters built by :mod:`schema.topics`, where ``+`` stands for any single level (a
machine id or a command id). A concrete topic is allowed when it matches a pattern;
a subscription filter is allowed only when every topic it can match is allowed,
which for these fixed-depth patterns means one pattern covers it level by level.
"""

from typing import Literal

from broker.principals import Principal
from schema import topics
from schema.errors import SchemaError

Action = Literal["publish", "subscribe", "receive"]

MACHINE_PUBLISH_KINDS = ("status", "reported", "telemetry", "events", "results")
MACHINE_RECEIVE_KINDS = ("desired", "cmd")
INTEGRATOR_RECEIVE_KINDS = ("status", "state", "telemetry", "events", "sales")
# Topics whose last message the broker keeps (CONTRACT section 1, "retain: yes").
RETAINED_KINDS = ("status", "reported", "desired", "cmd", "state", "server_status")

_WILD = "+"
_MULTI = "#"


def publish_patterns(principal: Principal) -> tuple[str, ...]:
    """Patterns a machine or integrator may publish to (the server is unrestricted)."""
    if principal.role != "machine":
        return ()
    try:
        return tuple(
            topics.machine_filter(kind, principal.username) for kind in MACHINE_PUBLISH_KINDS
        )
    except SchemaError:
        return ()


def receive_patterns(principal: Principal) -> tuple[str, ...]:
    """Patterns a machine or integrator may subscribe to and receive."""
    if principal.role == "integrator":
        return (
            *(topics.machine_filter(kind) for kind in INTEGRATOR_RECEIVE_KINDS),
            topics.SERVER_STATUS,
        )
    if principal.role != "machine":
        return ()
    try:
        own = tuple(
            topics.machine_filter(kind, principal.username) for kind in MACHINE_RECEIVE_KINDS
        )
    except SchemaError:
        return ()
    return (*own, topics.SERVER_STATUS)


def is_valid_topic(topic: str) -> bool:
    """A topic a client may publish: non-empty, no wildcard characters."""
    return bool(topic) and _WILD not in topic and _MULTI not in topic and "\x00" not in topic


def is_valid_filter(topic_filter: str) -> bool:
    """A well-formed MQTT subscription filter."""
    if not topic_filter or "\x00" in topic_filter:
        return False
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if _MULTI in level and (level != _MULTI or index != len(levels) - 1):
            return False
        if _WILD in level and level != _WILD:
            return False
    return True


def _matches(topic: str, pattern: str) -> bool:
    """Does a concrete ``topic`` match a ``pattern`` (``+`` wildcards only)?"""
    got, want = topic.split("/"), pattern.split("/")
    return len(got) == len(want) and all(w in (_WILD, g) for g, w in zip(got, want, strict=True))


def _covers(pattern: str, topic_filter: str) -> bool:
    """Is every topic ``topic_filter`` can match also matched by ``pattern``?"""
    got, want = topic_filter.split("/"), pattern.split("/")
    if len(got) != len(want) or _MULTI in got:
        return False
    return all(w == _WILD or g == w for g, w in zip(got, want, strict=True))


def allowed(principal: Principal, action: str, topic: str) -> bool:
    """May ``principal`` perform ``action`` on ``topic`` (a filter, for subscribe)?"""
    if action == "subscribe":
        if not is_valid_filter(topic):
            return False
    elif action in ("publish", "receive"):
        if not is_valid_topic(topic):
            return False
    else:
        return False
    if principal.role == "server":
        return not (action == "publish" and topic.startswith("$"))
    if topic.startswith("$"):
        return False
    if action == "publish":
        return any(_matches(topic, p) for p in publish_patterns(principal))
    if action == "receive":
        return any(_matches(topic, p) for p in receive_patterns(principal))
    return any(_covers(p, topic) for p in receive_patterns(principal))


def may_retain(topic: str) -> bool:
    """True for the topics the contract marks retained; a retained publish elsewhere
    is delivered as not retained and not stored."""
    try:
        kind, _mid, _cmd = topics.parse(topic)
    except SchemaError:
        return False
    return kind in RETAINED_KINDS
