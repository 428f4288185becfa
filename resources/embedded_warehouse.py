"""The embedded Snowflake-compatible warehouse: fakesnow's server, persisted on disk.

fakesnow keeps one DuckDB file per database under ``data_dir``. A DuckDB file is locked by one
process, so everything (pipeline, CLI, dashboard) talks to this one server over Snowflake's own
protocol, exactly as it would talk to a real account.
"""

from __future__ import annotations

from pathlib import Path


def serve(data_dir: str | Path, host: str = "127.0.0.1", port: int = 8766) -> None:
    import fakesnow.server
    import uvicorn
    from fakesnow.instance import FakeSnow

    path = Path(data_dir)
    path.mkdir(parents=True, exist_ok=True)
    # fakesnow's server resolves `shared_fs` on every login; pointing it at a FakeSnow with a
    # db_path makes every session share one persistent store (the `-d` flag is ignored in -s mode).
    fakesnow.server.shared_fs = FakeSnow(db_path=str(path))
    uvicorn.run(fakesnow.server.app, host=host, port=port, log_level="warning")
