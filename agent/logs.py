"""One line per event, human-readable (`msg key=value ...`) or JSON.

Structured fields travel in `extra={"fields": {...}}`; `event()` is the short
way to log one. Task lines carry task, type, outcome and duration_ms so an
operator can grep a task id across agents and the API.
"""

from __future__ import annotations

import logging
import sys
import time

from agent.encoding import dumps


def event(logger: logging.Logger, level: int, message: str, **fields) -> None:
    logger.log(level, message, extra={"fields": fields})


def _fmt_value(value) -> str:
    if isinstance(value, float):
        value = f"{value:.1f}"
    text = str(value).replace("\n", " ")
    return f'"{text}"' if (" " in text or not text) else text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        line = f"{ts} {record.levelname} {record.name}: {record.getMessage()}"
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{k}={_fmt_value(v)}" for k, v in fields.items() if v is not None)
        if record.exc_info:
            # Keep it one line: the exception type and message, not the traceback.
            exc = record.exc_info[1]
            line += f" exc={_fmt_value(f'{type(exc).__name__}: {exc}')}"
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            exc = record.exc_info[1]
            doc["exc"] = f"{type(exc).__name__}: {exc}"
        # agent/encoding.py: a line per task at thousands of tasks a second; UTF-8, not \u escapes, and
        # what JSON has no form for written as str() of it, as before.
        return dumps(doc, default=str).decode()


def setup_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    # The formatters above use none of the caller's file, line, thread or process: the logging HOWTO's
    # "Optimization" switches spare the frame walk and lookups of each record (a line per task).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("urllib3").setLevel(logging.WARNING)
