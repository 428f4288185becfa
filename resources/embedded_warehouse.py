"""The embedded Snowflake-compatible warehouse: fakesnow's server, persisted on disk.

fakesnow keeps one DuckDB file per database under ``data_dir``. A DuckDB file is locked by one
process, so everything (pipeline, CLI, dashboard) talks to this one server over Snowflake's own
protocol, exactly as it would talk to a real account.
"""

from __future__ import annotations

from pathlib import Path


def _answer_comment_statements() -> None:
    """Snowflake answers ``COMMENT ON ...`` with a status row. fakesnow's server runs the comment,
    then describes the statement's result with DuckDB's DESCRIBE, which cannot describe a
    COMMENT and fails the call; describe a status row instead, as Snowflake returns."""
    from fakesnow.cursor import FakeSnowflakeCursor

    describe = FakeSnowflakeCursor._describe_last_sql

    def describe_status_for_comments(cursor: FakeSnowflakeCursor) -> list:
        last = str(cursor._last_sql or "").lstrip().upper()
        if last.startswith("COMMENT ON"):
            cursor._last_sql = "SELECT 'Statement executed successfully.' AS status"
        return describe(cursor)

    FakeSnowflakeCursor._describe_last_sql = describe_status_for_comments  # type: ignore[method-assign]


def serve(data_dir: str | Path, host: str = "127.0.0.1", port: int = 8766) -> None:
    import fakesnow.server
    import uvicorn
    from fakesnow.instance import FakeSnow

    _answer_comment_statements()
    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    # fakesnow's server resolves `shared_fs` on every login; pointing it at a FakeSnow with a
    # db_path makes every session share one persistent store (the `-d` flag is ignored in -s mode).
    fakesnow.server.shared_fs = FakeSnow(db_path=str(path))
    uvicorn.run(fakesnow.server.app, host=host, port=port, log_level="warning")
