"""The firmware loop spreads its reconnects: every wait is the backoff times 0.5 to 1.5."""

import random
from pathlib import Path

from device.hosthal import HostHal
from tests.device.board import load_main


def test_reconnect_waits_are_jittered_and_back_off(tmp_path: Path) -> None:
    main = load_main()
    random.seed(7)
    firmware = main.Firmware(HostHal(str(tmp_path)), {"machine_id": "fw-1"})
    waits = []
    for _ in range(8):
        backoff = firmware.backoff_ms
        firmware.schedule_retry()
        assert backoff // 2 <= firmware.wait_ms < backoff * 3 // 2
        waits.append((backoff, firmware.wait_ms))
    assert [b for b, _ in waits] == [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
    assert len({w for b, w in waits if b == 30000}) == 3  # not the same wait twice

    after_loss = set()
    for _ in range(20):
        firmware.lost()
        assert 500 <= firmware.wait_ms < 1500
        after_loss.add(firmware.wait_ms)
    assert len(after_loss) > 10  # machines that lose the broker together come back apart
