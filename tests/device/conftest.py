from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.device.mosquitto import mosquitto


@pytest.fixture
def mosquitto_port(tmp_path: Path) -> Iterator[int]:
    broker_dir = tmp_path / "mosquitto"
    broker_dir.mkdir()
    with mosquitto(broker_dir) as port:
        yield port
