"""Run a fleet of virtual machines from the command line.

    python -m device.simulate --machines 100 --mqtt-url mqtt://127.0.0.1:1883 \\
        --credentials machines.json --fail-rate 0.05 --jam-rate 0.01

``--credentials`` is a JSON file ``{"machines": [{"machine_id": ..., "api_key": ...}]}``
(the first ``--machines`` entries are used; all of them when ``--machines`` is
omitted); an entry may say ``"slots": 6`` for a machine with six motors.

Several slots: ``--slots 6`` gives every machine (without its own ``slots``) six
motors; ``--jam-slot B3`` makes slot B3's motor stall on every run and
``--empty-slot A2`` makes slot A2 drop nothing (both repeatable; slot ids as the
server's planogram names them).

Without ``--credentials``, machines are named ``sim-0001`` ... and connect without
a password (only a broker that allows that will accept them).
A one-line summary is printed every second; Ctrl-C stops.
"""

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from device.simulator import FirmwareFaults, Fleet


def parse_mqtt_url(url: str) -> tuple[str, int, bool]:
    """``mqtt://host:port`` or ``mqtts://host:port`` -> (host, port, tls)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError("MQTT URL must start with mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    return parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls


def _entries(path: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    entries = data.get("machines") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError(path + ': expected {"machines": [{"machine_id", "api_key"}, ...]}')
    return entries


def load_credentials(path: str) -> list[tuple[str, str | None]]:
    return [(str(e["machine_id"]), e.get("api_key")) for e in _entries(path)]


def load_slot_counts(path: str) -> dict[str, int]:
    """The ``slots`` (motor count) of the entries that give one."""
    return {str(e["machine_id"]): int(e["slots"]) for e in _entries(path) if "slots" in e}


def build_parser() -> argparse.ArgumentParser:
    run_as = sys.argv[0] if not sys.argv[0].endswith(".py") else "python -m device.simulate"
    p = argparse.ArgumentParser(prog=run_as, description=__doc__.split("\n")[0])
    p.add_argument("--machines", type=int, default=None, help="how many machines to run")
    p.add_argument(
        "--mqtt-url",
        default="mqtt://127.0.0.1:1883",
        help="the broker (mqtt:// or mqtts://; default mqtt://127.0.0.1:1883)",
    )
    p.add_argument("--credentials", help="JSON file with machine ids and API keys")
    p.add_argument("--fail-rate", type=float, default=0.0, help="chance a unit does not fall")
    p.add_argument("--jam-rate", type=float, default=0.0, help="chance a unit jams the motor")
    p.add_argument("--drop-connection-rate", type=float, default=0.0, help="per machine per second")
    p.add_argument("--reboot-rate", type=float, default=0.0, help="per machine per second")
    p.add_argument("--clock-skew", type=float, default=0.0, help="max clock error, seconds")
    p.add_argument("--motor-ms", type=int, default=300, help="motor on-time per unit")
    p.add_argument("--service-s", type=float, default=5.0, help="operator visit after a jam")
    p.add_argument(
        "--telemetry-s", type=float, default=60, help="seconds between telemetry (0: none)"
    )
    p.add_argument(
        "--slots", type=int, default=1, help="motors per machine (several slots), default 1"
    )
    p.add_argument(
        "--jam-slot",
        action="append",
        default=[],
        metavar="ID",
        help="this slot's motor stalls on every run (repeatable)",
    )
    p.add_argument(
        "--empty-slot",
        action="append",
        default=[],
        metavar="ID",
        help="this slot drops nothing (repeatable)",
    )
    p.add_argument("--seed", type=int, default=None, help="repeatable faults: the random seed")
    p.add_argument(
        "--flash-dir",
        default=None,
        help="keep each machine's flash (boot counter, ledger) in DIR/<machine id>.json, "
        "so machines started again announce a new boot as real ones do (default: in memory)",
    )
    p.add_argument(
        "--fw-dir",
        default=None,
        help="take firmware updates for real: each machine's firmware files in DIR/<machine id>/",
    )
    p.add_argument("--http-url", default="", help="the server's base URL for downloads")
    p.add_argument(
        "--firmware-key", action="append", default=[], help="a trusted public key (64 hex)"
    )
    p.add_argument("--trial-s", type=float, default=120.0, help="a new version's trial")
    p.add_argument("--fw-version", default="1.0.0", help="the version machines start with")
    p.add_argument("--hash-mismatch-rate", type=float, default=0.0, help="per update")
    p.add_argument("--crash-on-boot-rate", type=float, default=0.0, help="per new version")
    p.add_argument("--download-drop-rate", type=float, default=0.0, help="per request")
    p.add_argument("--download-delay-s", type=float, default=0.0, help="pause per chunk")
    p.add_argument("--offline-rate", type=float, default=0.0, help="per machine per second")
    p.add_argument("--offline-s", type=float, default=30.0, help="how long an outage lasts")
    p.add_argument("--insecure", action="store_true", help="TLS without certificate checks")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    return p


def machines_from(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    if args.credentials:
        machines = load_credentials(args.credentials)
        return machines if args.machines is None else machines[: args.machines]
    count = 10 if args.machines is None else args.machines
    return [(f"sim-{i:04d}", None) for i in range(1, count + 1)]


async def run(args: argparse.Namespace) -> None:
    host, port, tls = parse_mqtt_url(args.mqtt_url)
    context = None
    if tls:
        context = ssl.create_default_context()
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    fleet = Fleet(
        machines_from(args),
        host,
        port,
        fail_rate=args.fail_rate,
        jam_rate=args.jam_rate,
        drop_connection_rate=args.drop_connection_rate,
        reboot_rate=args.reboot_rate,
        clock_skew=args.clock_skew,
        motor_ms=args.motor_ms,
        service_s=args.service_s,
        telemetry_s=args.telemetry_s,
        seed=args.seed,
        tls_context=context,
        flash_dir=args.flash_dir,
        slots=args.slots,
        slot_counts=load_slot_counts(args.credentials) if args.credentials else None,
        jam_slots=args.jam_slot,
        empty_slots=args.empty_slot,
        fw_dir=args.fw_dir,
        http_url=args.http_url,
        firmware_keys=args.firmware_key,
        trial_s=args.trial_s,
        fw_version=args.fw_version,
        fw_faults=FirmwareFaults(
            args.hash_mismatch_rate,
            args.crash_on_boot_rate,
            args.download_drop_rate,
            args.download_delay_s,
        ),
        offline_rate=args.offline_rate,
        offline_s=args.offline_s,
    )
    live = sys.stdout.isatty()
    async with fleet:
        loop = asyncio.get_running_loop()
        end = None if args.duration is None else loop.time() + args.duration
        while end is None or loop.time() < end:
            await asyncio.sleep(1.0)
            print(fleet.summary_line(), end="\r" if live else "\n", flush=True)
    print()
    print(json.dumps(fleet.summary()))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
