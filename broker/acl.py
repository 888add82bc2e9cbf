"""Who may publish, subscribe to and receive which topic (CONTRACT section 1).

Pure policy, no I/O. Each role's rights are a list of *patterns*: subscription
filters built by :mod:`schema.topics`, where ``+`` stands for any single level (a
machine id or a command id) and a final ``#`` for any levels below. A concrete
topic is allowed when it matches a pattern; a subscription filter is allowed only
when every topic it can match is allowed, i.e. one pattern covers it level by level.

A Home Assistant account (CONTRACT section 7) reads what Home Assistant needs:
everything under its discovery prefix, every machine's ``state`` and ``today``
and ``server/status``; it publishes only ``{prefix}/status`` (Home Assistant's
birth and will). It can never reach a machine's ``desired``, ``cmd`` or ``results``.
"""

from typing import Literal

from broker.principals import DEFAULT_DISCOVERY_PREFIX, Principal
from schema import topics
from schema.errors import SchemaError

Action = Literal["publish", "subscribe", "receive"]

MACHINE_PUBLISH_KINDS = ("status", "reported", "telemetry", "events", "results")
MACHINE_RECEIVE_KINDS = ("desired", "cmd")
INTEGRATOR_RECEIVE_KINDS = ("status", "state", "telemetry", "events", "sales", "today")
HOME_ASSISTANT_RECEIVE_KINDS = ("state", "today")
# Topics whose last message the broker keeps (CONTRACT section 1, "retain: yes").
RETAINED_KINDS = ("status", "reported", "desired", "cmd", "state", "today", "server_status")

_WILD = "+"
_MULTI = "#"


def _discovery_prefix(principal: Principal) -> str:
    return principal.discovery_prefix or DEFAULT_DISCOVERY_PREFIX


def publish_patterns(principal: Principal) -> tuple[str, ...]:
    """Patterns a machine or integrator may publish to (the server is unrestricted)."""
    if principal.role == "home_assistant":
        try:
            return (topics.discovery_status(_discovery_prefix(principal)),)
        except SchemaError:
            return ()
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
    if principal.role == "home_assistant":
        try:
            discovery: tuple[str, ...] = (topics.discovery_filter(_discovery_prefix(principal)),)
        except SchemaError:
            discovery = ()
        return (
            *discovery,
            *(topics.machine_filter(kind) for kind in HOME_ASSISTANT_RECEIVE_KINDS),
            topics.SERVER_STATUS,
        )
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
    """Does a concrete ``topic`` match a ``pattern`` (``+``, and ``#`` last)?"""
    got, want = topic.split("/"), pattern.split("/")
    if want[-1] == _MULTI:  # "a/#" matches "a" and everything below it
        head = want[:-1]
        return len(got) >= len(head) and all(
            w in (_WILD, g) for g, w in zip(got[: len(head)], head, strict=True)
        )
    return len(got) == len(want) and all(w in (_WILD, g) for g, w in zip(got, want, strict=True))


def _covers(pattern: str, topic_filter: str) -> bool:
    """Is every topic ``topic_filter`` can match also matched by ``pattern``?"""
    got, want = topic_filter.split("/"), pattern.split("/")
    if want[-1] == _MULTI:
        head = want[:-1]
        # Every level the pattern names must be named the same (or be "+" in both);
        # what the filter has below, wildcards included, is covered by "#".
        return len(got) > len(head) and all(
            w == _WILD or g == w for g, w in zip(got[: len(head)], head, strict=True)
        )
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
    """True for the topics the contract marks retained, and Home Assistant discovery
    configs (only the server may publish those); a retained publish elsewhere is
    delivered as not retained and not stored."""
    try:
        topics.parse_discovery_config(topic)
        return True
    except SchemaError:
        pass
    try:
        kind, _mid, _cmd = topics.parse(topic)
    except SchemaError:
        return False
    return kind in RETAINED_KINDS
