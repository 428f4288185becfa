"""What a run launched from the CLI shows on the terminal: one line per message, never a stack.

A failed step's stack trace is ~100 lines of Dagster frames around one sentence that matters (the
URL, file or value our code named). The terminal gets that sentence; the stack stays in the run's
event log, where the Dagster UI shows it. Runs launched from the UI keep Dagster's own console
logger: the ``terminal`` logger is used only when a run's config asks for it, as the CLI does.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from dagster import DagsterEventType, Field, InitLoggerContext, logger

# Dagster wraps what our code raised in errors of its own (DagsterExecutionStepExecutionError...).
_FRAMEWORK = re.compile(r"^(Dagster|Check)\w*Error$")
# The events the CLI reports itself, as its last line.
_REPORTED_BY_THE_CLI = {DagsterEventType.STEP_FAILURE.value, DagsterEventType.RUN_FAILURE.value}


def user_error(error: Any) -> Any:
    """The error our code raised (the first in the cause chain that is not Dagster's wrapper), or
    the innermost one when every error is Dagster's. ``error`` is a ``SerializableErrorInfo``."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause or error.context
    return next((e for e in chain if not _FRAMEWORK.match(e.cls_name or "")), chain[-1] if chain else None)


def error_line(error: Any) -> str:
    """``Class: message`` on one line, without the module path Python puts before the class."""
    found = user_error(error)
    if found is None:
        return "unknown error"
    message = " ".join(found.message.split())
    # format_exception_only writes "package.module.Class: message".
    name = found.cls_name or ""
    prefix = re.match(rf"^[\w.]*\b{re.escape(name)}: ", message) if name else None
    if prefix:
        message = message[prefix.end() :]
    return f"{name}: {message}" if name else message


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        # The message as our code logged it; Dagster's own rendering appends the stack after a
        # blank line.
        message = meta.get("orig_message") or record.getMessage().split("\n\n")[0]
        step = meta.get("step_key") or meta.get("job_name") or "run"
        mark = "!" if record.levelno >= logging.WARNING else " "
        return f"  {mark} {step}: {' '.join(str(message).split())}"


class _NotReported(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        if getattr(event, "event_type_value", None) in _REPORTED_BY_THE_CLI:
            return False
        # "Dependencies for step X failed: [...]. Not executing.": the consequence of a failure
        # (or of a blocking check) the CLI reports itself, one line up.
        message = str(meta.get("orig_message") or record.getMessage())
        return not message.startswith("Dependencies for step")


@logger(
    config_schema={"log_level": Field(str, is_required=False, default_value="WARNING")},
    description="One line per message on stderr, failures left to the CLI (the stack stays in the event log).",
)
def terminal_logger(init_context: InitLoggerContext) -> logging.Logger:
    level = logging.getLevelName(str(init_context.logger_config["log_level"]).upper())
    out = logging.Logger("crypto-analytics", level=level if isinstance(level, int) else logging.WARNING)
    handler = logging.StreamHandler()  # stderr, as Dagster's console logger
    handler.setFormatter(_OneLine())
    handler.addFilter(_NotReported())
    out.addHandler(handler)
    return out
