"""Which controller the CLI talks to: DLJOBS_URL/DLJOBS_TOKEN, else the context saved by `dljobs login`,
else the embedded default (started on demand where a command needs it)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from dljobs.client.errors import ConnectionFailed, InvalidInput
from dljobs.client.http import Client
from dljobs.spec.local import CONFIG_FILE, dljobs_home


@dataclass(frozen=True)
class Target:
    url: str
    token: str | None
    source: str  # "env", "context NAME" or "local"


def _config_path() -> Path:
    return dljobs_home() / CONFIG_FILE


def load_config() -> dict[str, object]:
    path = _config_path()
    if not path.exists():
        return {"current": None, "contexts": {}}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise InvalidInput(f"{path} is not valid JSON: fix or delete it") from None
    return data if isinstance(data, dict) else {"current": None, "contexts": {}}


def save_context(name: str, url: str, token: str) -> Path:
    config = load_config()
    contexts = dict(config.get("contexts") or {})  # type: ignore[call-overload]
    contexts[name] = {"url": url.rstrip("/"), "token": token}
    config["contexts"], config["current"] = contexts, name
    path = _config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(config, handle, indent=2)
    os.chmod(path, 0o600)
    return path


def remove_context(name: str | None) -> str | None:
    config = load_config()
    contexts = dict(config.get("contexts") or {})  # type: ignore[call-overload]
    name = name or config.get("current")  # type: ignore[assignment]
    if not name or name not in contexts:
        return None
    del contexts[name]
    config["contexts"] = contexts
    if config.get("current") == name:
        config["current"] = None
    _config_path().write_text(json.dumps(config, indent=2))
    return name


def configured_target() -> Target | None:
    """A remote controller named by the environment or a saved context; None means the local default."""
    url, token = os.environ.get("DLJOBS_URL"), os.environ.get("DLJOBS_TOKEN")
    if url:
        return Target(url.rstrip("/"), token, "env")
    config = load_config()
    current = config.get("current")
    contexts = config.get("contexts") or {}
    if isinstance(current, str) and isinstance(contexts, dict) and current in contexts:
        entry = contexts[current]
        return Target(str(entry["url"]), entry.get("token"), f"context {current}")
    return None


def local_running() -> Target | None:
    from dljobs.cli import local_stack

    server = local_stack.running()
    return Target(server.url, server.token(), "local") if server else None


def local_target(start: bool) -> Target:
    from dljobs.cli import local_stack
    from dljobs.cli.output import note

    server = local_stack.running()
    if server is None:
        if not start:
            raise ConnectionFailed(
                "no dljobs server: run `dljobs up` (local) or `dljobs login URL --token ...`"
            )
        home = dljobs_home()
        note(f"Starting the local dljobs stack in {home} (SQLite, a local Ray head, artifacts on disk)...")
        server = local_stack.start(home)
        note(f"Local dljobs server at {server.url}; `dljobs down` stops it.")
    return Target(server.url, server.token(), "local")


def client(*, start_local: bool = False) -> Client:
    target = configured_target() or local_target(start_local)
    return Client(target.url, target.token)
