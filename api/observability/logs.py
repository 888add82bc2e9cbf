"""Log lines as text for people or as JSON for a log pipeline (``LOG_FORMAT=json``).

A JSON line is one object: ``ts`` (Unix seconds, float), ``level``, ``logger``,
``message``, ``pid`` (which worker), ``exc`` when an exception was logged, and
any ``extra={...}`` fields the caller gave.
"""

import json
import logging
import os
import sys
from typing import Any

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
# Per-connection chatter of libraries: warnings only.
QUIET = ("amqtt", "transitions")
# Attributes every LogRecord has: anything else came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {log_format!r}")


def configure(log_format: str, *, level: int = logging.INFO) -> None:
    """Send every logger (uvicorn's too) to stderr in ``log_format``; call once per process."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for noisy in QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger(__name__).debug("logging as %s in process %d", log_format, os.getpid())
