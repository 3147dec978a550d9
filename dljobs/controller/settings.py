"""Controller settings: nested, read from `DLJOBS_*` environment variables, injected (never global).

`DLJOBS_DATABASE__URL`, `DLJOBS_RAY__ADDRESS`, `DLJOBS_STORAGE__URL`, ... (a double underscore nests).
Unset values fall back to the embedded default under `DLJOBS_HOME` (`~/.dljobs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dljobs.spec.local import dljobs_home


def default_home() -> Path:
    return dljobs_home()


class DatabaseSettings(BaseModel):
    url: str = Field(
        default="",
        description="sqlite+aiosqlite:///PATH or postgresql+asyncpg://...; empty: SQLite under DLJOBS_HOME",
        repr=False,  # it may hold the password: never in a repr, a log line or a traceback's locals
    )
    pool_size: int = Field(default=10, ge=1, le=200)
    echo: bool = False


class RaySettings(BaseModel):
    address: str = Field(
        default="",
        description="the Ray dashboard URL (http://HOST:8265); empty: start a "
        "local head owned by the controller",
    )
    token: SecretStr | None = Field(default=None, description="Ray's auth token (RAY_AUTH_MODE=token)")
    token_file: Path | None = None
    request_timeout: float = Field(default=15.0, gt=0)
    local_num_cpus: int | None = Field(
        default=None, ge=1, description="CPUs of the local head (default: all)"
    )
    local_num_gpus: int | None = Field(default=None, ge=0)
    local_port: int = Field(
        default=0, ge=0, le=65535, description="GCS port of the local head; 0 picks a free one"
    )
    local_dashboard_port: int = Field(default=0, ge=0, le=65535)

    def resolved_token(self) -> str | None:
        if self.token is not None:
            return self.token.get_secret_value()
        if self.token_file is not None and self.token_file.exists():
            return self.token_file.read_text().strip() or None
        return None


class StorageSettings(BaseModel):
    url: str = Field(
        default="", description="file:///DIR or s3://BUCKET/PREFIX; empty: DLJOBS_HOME/artifacts"
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="for S3-compatible servers (MinIO, SeaweedFS)"
    )
    s3_region: str | None = None
    retry_seconds: float = Field(
        default=60.0, ge=0, le=3600, description="how long the controller retries an unreachable store"
    )
    max_bundle_bytes: int = Field(default=100 * 1024 * 1024, ge=1024)


class AuthSettings(BaseModel):
    bootstrap_admin_token: SecretStr | None = Field(
        default=None, description="on a cluster: the first admin's token, from a Secret"
    )
    bootstrap_admin_name: str = "admin"


class LoopSettings(BaseModel):
    enabled: bool = True
    interval: float = Field(default=1.0, gt=0)


class SchedulerSettings(LoopSettings):
    capacity_ttl: float = Field(
        default=5.0, ge=0, description="seconds a read of the cluster's size is reused"
    )


class ReconcilerSettings(LoopSettings):
    interval: float = 1.0
    lease_seconds: float = Field(default=30.0, gt=0)
    batch_size: int = Field(default=100, ge=1)
    launch_grace: float = Field(
        default=300.0, gt=0, description="seconds an unconfirmed launch is retried under the same id"
    )


class JanitorSettings(LoopSettings):
    interval: float = 30.0


class NotifierSettings(LoopSettings):
    timeout: float = Field(default=5.0, gt=0, description="seconds a receiver has to answer")
    max_attempts: int = Field(default=8, ge=1, le=100)
    backoff_seconds: float = Field(default=10.0, gt=0, description="first retry's delay; it doubles")
    batch_size: int = Field(default=50, ge=1)


class ServingSettings(LoopSettings):
    """The deployer loop and the predict gateway."""

    interval: float = 1.0
    http_url: str = Field(
        default="",
        description="where the controller reaches Ray Serve's proxy; empty: http://HOST:PORT below",
    )
    http_host: str = Field(default="127.0.0.1", description="Serve's proxy host (set when Serve starts)")
    http_port: int = Field(default=8000, ge=1, le=65535, description="Serve's proxy port")
    drain_seconds: float = Field(
        default=15.0, ge=0, description="a version switched away from keeps serving this long"
    )
    route_ttl: float = Field(
        default=1.0, ge=0, description="seconds a controller reuses an endpoint's routing"
    )
    stats_window: int = Field(default=300, ge=10, description="seconds the canary check and `show` look back")
    lease_seconds: float = Field(default=30.0, gt=0)

    @property
    def serve_url(self) -> str:
        return (self.http_url or f"http://{self.http_host}:{self.http_port}").rstrip("/")


class LauncherSettings(BaseModel):
    kind: Literal["ray_jobs", "kuberay_rayjob"] = "ray_jobs"
    namespace: str = "default"
    rayjob_ttl_seconds: int = Field(default=600, ge=0)
    ray_image: str = "dljobs-ray:0.1.0"
    rayjob_template_file: Path | None = Field(
        default=None, description="the RayJobTemplate JSON the Helm chart renders (kuberay_rayjob launcher)"
    )


class ServerSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    public_url: str = Field(
        default="", description="how Ray workers reach this controller (metrics, artifacts)"
    )
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    log_format: Literal["text", "json"] = Field(default="text", description="json: one object per line")
    log_level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")
    workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="API processes (cluster mode); each runs the loops, safe by leases",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DLJOBS_", env_nested_delimiter="__", extra="ignore")

    home: Path = Field(default_factory=default_home)
    mode: Literal["embedded", "cluster"] = "embedded"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ray: RaySettings = Field(default_factory=RaySettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    reconciler: ReconcilerSettings = Field(default_factory=ReconcilerSettings)
    janitor: JanitorSettings = Field(default_factory=JanitorSettings)
    notifier: NotifierSettings = Field(default_factory=NotifierSettings)
    launcher: LauncherSettings = Field(default_factory=LauncherSettings)
    serving: ServingSettings = Field(default_factory=ServingSettings)

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.home / 'dljobs.db'}"

    @property
    def storage_url(self) -> str:
        return self.storage.url or (self.home / "artifacts").as_uri()
