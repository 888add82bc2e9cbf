"""Presence decisions shared by the one-message and the batched paths (pure)."""


def status_applies(stored_boot: int, stored_online: bool, boot: int, online: bool) -> bool:
    """Whether a ``status`` of ``boot``/``online`` changes a machine at ``stored_*``.

    An older boot's will, a repeat, or a redelivered retained ``online`` after
    silence took the machine offline change nothing: only a new boot (a
    reconnect) or a live message brings it back.
    """
    if boot < stored_boot:
        return False
    return not (boot == stored_boot and (online or not stored_online))


def revives(online: bool, boot: int) -> bool:
    """Whether a live message (telemetry, event, reported) brings the machine back online."""
    return not online and boot != 0
