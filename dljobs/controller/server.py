"""Serve the controller with uvicorn, or only migrate its database."""

from __future__ import annotations

import argparse
import logging
import os

from dljobs.controller.settings import Settings


def serve(settings: Settings, *, migrate_only: bool = False, log_level: str = "info") -> None:
    from dljobs.controller.telemetry import configure_logging

    configure_logging(log_level, settings.server.log_format)
    if migrate_only:
        from dljobs.controller.db.migrate import upgrade

        upgrade(settings.database_url)
        logging.getLogger("dljobs").info("database migrated")
        return
    import uvicorn

    options = {
        "host": settings.server.host,
        "port": settings.server.port,
        "log_level": log_level,
        "access_log": False,
        "timeout_graceful_shutdown": 30,
        "log_config": None,  # our handlers (text or JSON lines) on the root logger serve uvicorn's too
    }
    if settings.server.workers > 1 and settings.mode == "cluster":
        # several processes, each building the app from the same DLJOBS_* environment
        os.environ["DLJOBS_SERVER__HOST"] = settings.server.host
        os.environ["DLJOBS_SERVER__PORT"] = str(settings.server.port)
        os.environ["DLJOBS_SERVER__LOG_LEVEL"] = log_level
        uvicorn.run(
            "dljobs.controller.app:create_app", factory=True, workers=settings.server.workers, **options
        )
        return
    from dljobs.controller.app import create_app

    uvicorn.run(create_app(settings), **options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dljobs.controller")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--migrate-only", action="store_true")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    settings = Settings()
    if args.host:
        settings.server.host = args.host
    if args.port is not None:
        settings.server.port = args.port
    serve(settings, migrate_only=args.migrate_only, log_level=args.log_level)
