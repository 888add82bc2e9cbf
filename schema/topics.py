"""Every SmartVend MQTT topic is built and parsed here, and nowhere else.

Portable: runs under CPython and MicroPython (no ``re``, no typing at run time).
"""

from schema.errors import SchemaError

ROOT = "smartvend/v1"
SERVER_STATUS = ROOT + "/server/status"

# Per-machine topic kinds, by direction.
DEVICE_KINDS = ("status", "reported", "telemetry", "events", "results")
CLOUD_KINDS = ("desired", "cmd")
SERVER_KINDS = ("state", "sales", "today")
# Kinds that carry a command id as the last level.
ID_KINDS = ("results", "cmd")
MACHINE_KINDS = DEVICE_KINDS + CLOUD_KINDS + SERVER_KINDS

MAX_MACHINE_ID = 32
MAX_CMD_ID = 64
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def _is_id(value: object, limit: int) -> bool:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        return False
    return all(ch in _ID_CHARS for ch in value)


def is_machine_id(value: object) -> bool:
    """True when ``value`` matches ``[A-Za-z0-9_-]{1,32}``."""
    return _is_id(value, MAX_MACHINE_ID)


def is_cmd_id(value: object) -> bool:
    """True when ``value`` matches ``[A-Za-z0-9_-]{1,64}``."""
    return _is_id(value, MAX_CMD_ID)


def _machine(mid: str, kind: str) -> str:
    if mid != "+" and not is_machine_id(mid):
        raise SchemaError("invalid machine id")
    return ROOT + "/machines/" + mid + "/" + kind


def machine_topic(mid: str, kind: str, cmd_id: str | None = None) -> str:
    """Build ``smartvend/v1/machines/{mid}/{kind}[/{cmd_id}]``.

    ``mid`` or ``cmd_id`` may be ``"+"`` to build a subscription filter.
    """
    if kind not in MACHINE_KINDS:
        raise SchemaError("unknown topic kind")
    base = _machine(mid, kind)
    if kind in ID_KINDS:
        if cmd_id is None:
            raise SchemaError("topic kind needs a command id")
        if cmd_id != "+" and not is_cmd_id(cmd_id):
            raise SchemaError("invalid command id")
        return base + "/" + cmd_id
    if cmd_id is not None:
        raise SchemaError("topic kind takes no command id")
    return base


def status(mid: str) -> str:
    return machine_topic(mid, "status")


def reported(mid: str) -> str:
    return machine_topic(mid, "reported")


def telemetry(mid: str) -> str:
    return machine_topic(mid, "telemetry")


def events(mid: str) -> str:
    return machine_topic(mid, "events")


def result(mid: str, cmd_id: str) -> str:
    return machine_topic(mid, "results", cmd_id)


def desired(mid: str) -> str:
    return machine_topic(mid, "desired")


def cmd(mid: str, cmd_id: str) -> str:
    return machine_topic(mid, "cmd", cmd_id)


def state(mid: str) -> str:
    return machine_topic(mid, "state")


def sales(mid: str) -> str:
    return machine_topic(mid, "sales")


def today(mid: str) -> str:
    """The machine's figures for the local day (retained, kept current by the server)."""
    return machine_topic(mid, "today")


def machine_filter(kind: str, mid: str = "+") -> str:
    """A subscription filter for one kind, of one machine or (``+``) of all."""
    if kind in ID_KINDS:
        return machine_topic(mid, kind, "+")
    return machine_topic(mid, kind)


def shared(group: str, topic_filter: str) -> str:
    """A shared subscription ``$share/{group}/{filter}``: the broker hands each
    matching message to one subscriber of the group (MQTT 5, and Mosquitto for
    3.1.1 clients too). A subscription filter only, never a topic to publish."""
    if not group or any(ch in group for ch in "/+#$"):
        raise SchemaError("invalid shared subscription group")
    if not topic_filter.startswith(ROOT + "/"):
        raise SchemaError("not a SmartVend subscription filter")
    return "$share/" + group + "/" + topic_filter


def parse(topic: object) -> tuple[str, str | None, str | None]:
    """Split a concrete topic into ``(kind, machine_id, cmd_id_or_None)``.

    The server status topic parses as ``("server_status", None, None)``.
    Anything else raises :class:`SchemaError`.
    """
    if not isinstance(topic, str):
        raise SchemaError("topic must be a string")
    if topic == SERVER_STATUS:
        return ("server_status", None, None)
    prefix = ROOT + "/machines/"
    if not topic.startswith(prefix):
        raise SchemaError("not a SmartVend machine topic")
    parts = topic[len(prefix) :].split("/")
    if len(parts) < 2 or not is_machine_id(parts[0]):
        raise SchemaError("invalid machine id")
    mid, kind = parts[0], parts[1]
    if kind not in MACHINE_KINDS:
        raise SchemaError("unknown topic kind")
    if kind in ID_KINDS:
        if len(parts) != 3 or not is_cmd_id(parts[2]):
            raise SchemaError("invalid command id")
        return (kind, mid, parts[2])
    if len(parts) != 2:
        raise SchemaError("unexpected topic levels")
    return (kind, mid, None)


# -- Home Assistant MQTT discovery -------------------------------------------
# Configs are retained at ``{prefix}/{component}/{node_id}/{object_id}/config``;
# Home Assistant announces itself on ``{prefix}/status``. The prefix is one level.

DISCOVERY_COMPONENTS = ("binary_sensor", "sensor")


def is_discovery_prefix(value: object) -> bool:
    """One topic level of ``[A-Za-z0-9_-]``, and not SmartVend's own root."""
    return _is_id(value, 64) and value != ROOT.split("/")[0]


def _discovery_level(value: str) -> str:
    if not _is_id(value, 96):
        raise SchemaError("invalid discovery id")
    return value


def discovery_config(prefix: str, component: str, node_id: str, object_id: str) -> str:
    """``{prefix}/{component}/{node_id}/{object_id}/config``."""
    if not is_discovery_prefix(prefix):
        raise SchemaError("invalid discovery prefix")
    if component not in DISCOVERY_COMPONENTS:
        raise SchemaError("unknown discovery component")
    node, obj = _discovery_level(node_id), _discovery_level(object_id)
    return prefix + "/" + component + "/" + node + "/" + obj + "/config"


def discovery_status(prefix: str) -> str:
    """Where Home Assistant publishes ``online`` (its birth) and ``offline`` (its will)."""
    if not is_discovery_prefix(prefix):
        raise SchemaError("invalid discovery prefix")
    return prefix + "/status"


def discovery_filter(prefix: str) -> str:
    """Everything under the discovery prefix (what Home Assistant subscribes to)."""
    if not is_discovery_prefix(prefix):
        raise SchemaError("invalid discovery prefix")
    return prefix + "/#"


def parse_discovery_config(topic: object) -> tuple[str, str, str, str]:
    """Split ``{prefix}/{component}/[{node_id}/]{object_id}/config`` into
    ``(prefix, component, node_id, object_id)`` (``node_id`` ``""`` when absent);
    anything else raises :class:`SchemaError`."""
    if not isinstance(topic, str):
        raise SchemaError("topic must be a string")
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[-1] != "config":
        raise SchemaError("not a discovery config topic")
    if not is_discovery_prefix(parts[0]) or not _is_id(parts[1], 64):
        raise SchemaError("not a discovery config topic")
    ids = parts[2:-1]
    if not all(_is_id(level, 96) for level in ids):
        raise SchemaError("invalid discovery id")
    node = ids[0] if len(ids) == 2 else ""
    return (parts[0], parts[1], node, ids[-1])
