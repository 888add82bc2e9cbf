"""Several workers serving one fleet: what they need and how their bridges differ.

With ``WORKERS`` > 1 every worker serves HTTP and runs a bridge, so the
database and the broker must be shared services: PostgreSQL (SQLite is one
file for one process) and an external broker with MQTT shared subscriptions
(the embedded broker lives inside one process). Each bridge then logs in with
a client id of its own and subscribes to the device topics through the shared
group :data:`SHARED_GROUP`, so the broker hands each device message to one
worker; the leader alone drains the outbox and republishes retained state.
"""

import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from api.errors import ConfigurationError
from api.mqtt.accounts import server_credentials
from api.settings import PREFIX, Settings

SHARED_GROUP = "smartvend"
# A non-leader's commits wake the leader's drain through LISTEN/NOTIFY (api.infra.changes_pg);
# polling stays as a fallback for changes no notification names.
CLUSTER_POLL_S = 0.1


def refusal(settings: Settings, workers: int) -> str | None:
    """Why ``workers`` workers cannot run on these settings, or None when they can."""
    if workers <= 1:
        return None
    why = []
    if make_url(settings.async_database_url).get_backend_name() != "postgresql":
        why.append(
            "the database is SQLite, a file only one process may write: "
            f"set {PREFIX}DATABASE_URL=postgresql://... (see docs/deployment.md)"
        )
    if settings.mqtt_url is None:
        why.append(
            "the MQTT broker is the embedded one, which lives inside a single process: "
            f"run Mosquitto (`smartvend mosquitto-config`) and set {PREFIX}MQTT_URL"
        )
    if not why:
        return None
    return f"{workers} workers need PostgreSQL and an external MQTT broker; " + "; ".join(why)


def require_cluster_ready(settings: Settings, workers: int) -> None:
    found = refusal(settings, workers)
    if found is not None:
        raise ConfigurationError(found)


def bridge_options(settings: Settings, leads: Callable[[], bool]) -> dict[str, Any]:
    """The bridge's keyword arguments for this worker."""
    if settings.workers <= 1:
        return {"leads": leads}
    username = server_credentials(settings).username
    return {
        "leads": leads,
        "client_id": f"{username}-{secrets.token_hex(4)}",
        "shared_group": SHARED_GROUP,
        "poll_s": CLUSTER_POLL_S,
    }
