"""Log lines as JSON (LOG_FORMAT=json) or text."""

import io
import json
import logging

import pytest

from api.errors import ConfigurationError
from api.observability import logs
from api.settings import Settings


def record(formatter: logging.Formatter, **extra: object) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logger.exception("vend %s failed", "o-1", extra=extra)
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    return stream.getvalue()


def test_json_lines_carry_the_message_level_worker_extras_and_exception() -> None:
    line = json.loads(record(logs.formatter("json"), machine_id="m-1"))
    assert line["message"] == "vend o-1 failed"
    assert line["level"] == "error" and line["logger"] == "tests.logs"
    assert isinstance(line["pid"], int) and isinstance(line["ts"], float)
    assert line["machine_id"] == "m-1"
    assert "RuntimeError: boom" in line["exc"]


def test_text_lines_are_for_people() -> None:
    text = record(logs.formatter("text"))
    assert "ERROR" in text and "tests.logs: vend o-1 failed" in text
    with pytest.raises(ValueError, match="log format"):
        logs.formatter("xml")


def test_log_format_setting_is_checked() -> None:
    assert Settings.from_env({"SMARTVEND_LOG_FORMAT": "json"}).log_format == "json"
    assert Settings.from_env({}).log_format == "text"
    with pytest.raises(ConfigurationError, match="LOG_FORMAT"):
        Settings.from_env({"SMARTVEND_LOG_FORMAT": "yaml"})
