"""Presence decisions shared by the one-message and the batched paths (pure)."""


def status_applies(stored_boot: int, stored_online: bool, boot: int, online: bool) -> bool:
    """Whether a ``status`` of ``boot``/``online`` changes a machine at ``stored_*``.

    An older boot's will, a repeat, or a redelivered ``online`` of a boot whose
    ``lost`` came already change nothing: only a new boot (a reconnect) brings a
    machine back. Nothing but ``status`` decides presence (CONTRACT 1).
    """
    if boot < stored_boot:
        return False
    return not (boot == stored_boot and (online or not stored_online))
