"""The controller's parts, built from settings and owned by the app's lifespan (no module globals)."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from dljobs.controller.db.engine import autocommit_session_factory, create_engine, session_factory
from dljobs.controller.db.migrate import upgrade
from dljobs.controller.launchers.base import Launcher
from dljobs.controller.launchers.serve import ServeClient
from dljobs.controller.loops.base import Loop
from dljobs.controller.loops.deployer import Deployer
from dljobs.controller.loops.notifier import Notifier
from dljobs.controller.loops.reconciler import Reconciler
from dljobs.controller.loops.scheduler import Scheduler
from dljobs.controller.ray_head import LocalRayHead, free_port
from dljobs.controller.services.auth import PrincipalCache, ProjectIds, ensure_admin, new_token
from dljobs.controller.services.gateway import Gateway
from dljobs.controller.settings import Settings
from dljobs.controller.telemetry import ControllerMetrics
from dljobs.spec.local import RAY_HEAD_PID_FILE, TOKEN_FILE
from dljobs.storage import ArtifactStore, open_store

log = logging.getLogger("dljobs.controller")


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    launcher: Launcher
    store: ArtifactStore
    scheduler: Scheduler
    reconciler: Reconciler
    notifier: Notifier
    deployer: Deployer
    gateway: Gateway
    owner: str
    ray_head: LocalRayHead | None = None
    principals: PrincipalCache = field(default_factory=PrincipalCache)
    project_ids: ProjectIds = field(default_factory=ProjectIds)
    metrics: ControllerMetrics = field(default_factory=ControllerMetrics)
    _ray_start: asyncio.Task[None] | None = field(default=None, repr=False)
    ray_error: str | None = None

    @functools.cached_property
    def autocommit_sessions(self) -> async_sessionmaker[AsyncSession]:
        """Sessions for work that writes in one statement (see db.engine.autocommit_session_factory)."""
        return autocommit_session_factory(self.engine)

    async def start(self, *, migrate: bool = True) -> None:
        if migrate:
            await asyncio.to_thread(upgrade, self.settings.database_url)
        await self._bootstrap_identity()
        if self.ray_head is not None:
            # the API answers at once; jobs wait in the queue until the head is up
            self._ray_start = asyncio.create_task(self._start_ray_head())
        for loop in self.loops:
            loop.start()

    async def _start_ray_head(self) -> None:
        assert self.ray_head is not None
        try:
            await asyncio.to_thread(self.ray_head.start)
            log.info("local Ray head ready at %s", self.ray_head.dashboard_url)
            self.scheduler.wake()
        except Exception as exc:
            self.ray_error = f"the local Ray head failed to start: {exc}"
            log.error(self.ray_error)

    @property
    def loops(self) -> tuple[Loop, ...]:
        return (self.scheduler, self.reconciler, self.notifier, self.deployer)

    async def stop(self) -> None:
        for loop in self.loops:
            await loop.stop()
        if self._ray_start is not None:
            await asyncio.gather(self._ray_start, return_exceptions=True)
        await self.launcher.close()
        await self.gateway.close()
        if self.ray_head is not None:
            await asyncio.to_thread(self.ray_head.stop)
            (self.settings.home / RAY_HEAD_PID_FILE).unlink(missing_ok=True)
        await self.engine.dispose()

    async def _bootstrap_identity(self) -> None:
        """The first admin: from the environment on a cluster, or a local token file in embedded mode."""
        auth = self.settings.auth
        token: str | None = None
        token_name = "bootstrap"
        if auth.bootstrap_admin_token is not None:
            token = auth.bootstrap_admin_token.get_secret_value()
        elif self.settings.mode == "embedded":
            token, token_name = read_or_create_local_token(self.settings.home), "local"
        if token is None:
            return
        await bootstrap_admin(self.sessions, auth.bootstrap_admin_name, token, token_name)


async def bootstrap_admin(
    sessions: async_sessionmaker[AsyncSession], name: str, token: str, token_name: str, attempts: int = 3
) -> None:
    """`ensure_admin` in a transaction of its own. Controllers (or API worker processes) starting together on
    a new database race to create the same rows: the loser's insert conflicts, and its next try finds them."""
    for attempt in range(attempts):
        try:
            async with sessions() as session, session.begin():
                await ensure_admin(session, name, token, token_name)
            return
        except IntegrityError:
            if attempt == attempts - 1:
                raise
            log.info("another controller bootstrapped the admin at the same time; reading its rows")


def read_or_create_local_token(home: Path) -> str:
    """The embedded controller's admin token, in a file only its owner can read."""
    path = home / TOKEN_FILE
    home.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_text().strip()
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    return token


def build_runtime(settings: Settings, metrics: ControllerMetrics | None = None) -> Runtime:
    from dljobs.controller.launchers.ray_jobs import RayJobsLauncher

    owner = f"{socket.gethostname()[:40]}-{os.getpid()}-{secrets.token_hex(3)}"
    engine = create_engine(
        settings.database_url, pool_size=settings.database.pool_size, echo=settings.database.echo
    )
    sessions = session_factory(engine)
    store = open_store(
        settings.storage_url,
        endpoint_url=settings.storage.s3_endpoint_url,
        region=settings.storage.s3_region,
        retry_seconds=settings.storage.retry_seconds,
    )
    ray_head: LocalRayHead | None = None
    serve_address, serve_token = settings.ray.address, settings.ray.resolved_token()
    if settings.launcher.kind == "kuberay_rayjob":
        from dljobs.controller.launchers.kuberay import RayJobLauncher

        launcher: Launcher = RayJobLauncher(settings)  # type: ignore[assignment]
    else:
        address, token = settings.ray.address, settings.ray.resolved_token()
        if not address:
            if settings.mode != "embedded":
                raise ValueError("DLJOBS_RAY__ADDRESS is required outside embedded mode")
            ray_head = LocalRayHead(
                num_cpus=settings.ray.local_num_cpus,
                num_gpus=settings.ray.local_num_gpus,
                port=settings.ray.local_port or free_port(),
                dashboard_port=settings.ray.local_dashboard_port or free_port(),
                log_file=settings.home / "ray-head.log",
                pid_file=settings.home / RAY_HEAD_PID_FILE,
            )
            address, token = ray_head.dashboard_url, ray_head.token
            serve_address, serve_token = address, token
        launcher = RayJobsLauncher(address, token, timeout=settings.ray.request_timeout)
    reconciler = Reconciler(settings, sessions, launcher, store, owner)
    scheduler = Scheduler(settings, sessions, launcher, store, owner, on_launched=reconciler.wake)
    notifier = Notifier(settings, sessions, owner)
    principals = PrincipalCache()
    gateway = Gateway(settings.serving, sessions, principals)
    # Serve answers a PUT once it has taken the config, which can take a while on a busy head
    serve = ServeClient(serve_address, serve_token, timeout=max(settings.ray.request_timeout, 60.0))
    deployer = Deployer(settings, sessions, serve, gateway, owner)
    if not serve_address:
        deployer.enabled = False  # no Ray dashboard to reach (KubeRay without a standing cluster)
    metrics = metrics or ControllerMetrics()
    for loop in (scheduler, reconciler, notifier, deployer):
        loop.metrics = metrics
    return Runtime(
        settings,
        engine,
        sessions,
        launcher,
        store,
        scheduler,
        reconciler,
        notifier,
        deployer,
        gateway,
        owner,
        ray_head,
        principals=principals,
        metrics=metrics,
    )
