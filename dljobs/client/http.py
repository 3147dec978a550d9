"""A synchronous client of the controller's HTTP API (`/api/v1`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from dljobs.client.errors import ConnectionFailed, NotFound, ServerError, from_response
from dljobs.spec import api, serving
from dljobs.spec.api import API_PREFIX
from dljobs.spec.status import JobStatus

RETRY_STATUSES = {502, 503, 504}


class Client:
    def __init__(self, url: str, token: str | None, *, timeout: float = 30.0, retries: int = 4) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url + API_PREFIX, headers=headers, timeout=timeout)
        self.retries = retries

    def clone(self) -> Client:
        """A separate client to the same server with the same token (one per thread)."""
        return Client(self.url, self._token, timeout=self._timeout, retries=self.retries)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send, retrying connection failures and 502/503/504 with backoff. Only idempotent requests
        (and POSTs carrying an Idempotency-Key) come through here more than once."""
        delay = 0.25
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ConnectionFailed(
                        f"cannot reach the dljobs server at {self.url}: {_why(exc)}"
                    ) from None
            else:
                if response.status_code not in RETRY_STATUSES or attempt == self.retries:
                    return self._check(response)
            time.sleep(delay)
            delay = min(delay * 2, 4.0)
        raise ConnectionFailed(f"cannot reach the dljobs server at {self.url}")

    @staticmethod
    def _check(response: httpx.Response) -> httpx.Response:
        if response.status_code < 400:
            return response
        try:
            body = response.json()
        except ValueError:
            body = None
        raise from_response(response.status_code, body)

    # ---- jobs -----------------------------------------------------------------------------------------

    def submit(
        self, spec: dict[str, Any], *, idempotency_key: str | None = None, dry_run: bool = False
    ) -> api.Job:
        headers = {"Idempotency-Key": idempotency_key or uuid.uuid4().hex}
        response = self._send(
            "POST",
            "/jobs",
            json={"spec": spec},
            headers=headers,
            params={"dry_run": "true"} if dry_run else None,
        )
        return api.Job.model_validate(response.json())

    def list_jobs(
        self,
        *,
        status: list[JobStatus] | None = None,
        project: str | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> api.JobList:
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = [s.value for s in status]
        if project:
            params["project"] = project
        if name:
            params["name"] = name
        if cursor:
            params["cursor"] = cursor
        return api.JobList.model_validate(self._send("GET", "/jobs", params=params).json())

    def get_job(self, job: str | int) -> api.Job:
        return api.Job.model_validate(self._send("GET", f"/jobs/{job}").json())

    def cancel(self, job: str | int) -> api.Job:
        return api.Job.model_validate(self._send("POST", f"/jobs/{job}/cancel").json())

    def events(self, job: str | int) -> list[api.JobEvent]:
        return [api.JobEvent.model_validate(e) for e in self._send("GET", f"/jobs/{job}/events").json()]

    def why(self, job: str | int) -> api.QueueExplanation:
        return api.QueueExplanation.model_validate(self._send("GET", f"/jobs/{job}/why").json())

    def logs(self, job: str | int, attempt: int | None = None) -> str:
        params = {"attempt": attempt} if attempt else None
        return self._send("GET", f"/jobs/{job}/logs", params=params).text

    def follow_logs(self, job: str | int, attempt: int | None = None) -> Iterator[str]:
        """The job's output as it is written, until the job ends."""
        params: dict[str, Any] = {"follow": "true"}
        if attempt:
            params["attempt"] = attempt
        try:
            with self._http.stream("GET", f"/jobs/{job}/logs", params=params, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                yield from response.iter_text()
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"lost the log stream from {self.url}: {_why(exc)}") from None

    def metrics(
        self, job: str | int, names: list[str] | None = None, trial: int | None = None
    ) -> api.JobMetrics:
        params: dict[str, Any] = {"name": names} if names else {}
        if trial is not None:
            params["trial"] = trial
        return api.JobMetrics.model_validate(
            self._send("GET", f"/jobs/{job}/metrics", params=params or None).json()
        )

    def trials(self, job: str | int) -> api.TrialList:
        return api.TrialList.model_validate(self._send("GET", f"/jobs/{job}/trials").json())

    def artifacts(self, job: str | int) -> list[api.Artifact]:
        return [api.Artifact.model_validate(a) for a in self._send("GET", f"/jobs/{job}/artifacts").json()]

    def download_artifact(self, job: str | int, artifact: api.Artifact, target: Path) -> None:
        """Stream one artifact to `target`, checking its SHA-256; a mismatch leaves no file behind."""
        import hashlib

        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        try:
            with self._http.stream("GET", f"/jobs/{job}/artifacts/{artifact.name}", timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                with partial.open("wb") as handle:
                    for chunk in response.iter_bytes():
                        digest.update(chunk)
                        handle.write(chunk)
        except httpx.TransportError as exc:
            partial.unlink(missing_ok=True)
            raise ConnectionFailed(f"downloading {artifact.name} failed: {_why(exc)}") from None
        if digest.hexdigest() != artifact.sha256:
            partial.unlink(missing_ok=True)
            raise ServerError(f"{artifact.name}: the download's SHA-256 does not match the recorded one")
        partial.replace(target)

    # ---- code bundles ---------------------------------------------------------------------------------

    def bundle_exists(self, sha256: str) -> bool:
        try:
            self._send("HEAD", f"/bundles/{sha256}")
            return True
        except NotFound:
            return False

    def upload_bundle(self, sha256: str, data: bytes) -> None:
        self._send("PUT", f"/bundles/{sha256}", content=data, headers={"Content-Type": "application/zip"})

    # ---- identity ---------------------------------------------------------------------------------------

    def whoami(self) -> api.WhoAmI:
        return api.WhoAmI.model_validate(self._send("GET", "/whoami").json())

    def list_projects(self) -> list[api.Project]:
        return [api.Project.model_validate(p) for p in self._send("GET", "/projects").json()]

    def create_project(self, name: str, quota: dict[str, Any]) -> api.Project:
        body = {"name": name, "quota": quota}
        return api.Project.model_validate(self._send("POST", "/projects", json=body).json())

    def set_quota(self, name: str, quota: dict[str, Any]) -> api.Project:
        return api.Project.model_validate(
            self._send("PATCH", f"/projects/{name}", json={"quota": quota}).json()
        )

    def add_member(self, project: str, user: str) -> None:
        self._send("POST", f"/projects/{project}/members", json={"user": user})

    def create_user(self, name: str, *, admin: bool = False, projects: list[str] | None = None) -> api.User:
        body = {"name": name, "admin": admin, "projects": projects or []}
        return api.User.model_validate(self._send("POST", "/users", json=body).json())

    def list_users(self) -> list[api.User]:
        return [api.User.model_validate(u) for u in self._send("GET", "/users").json()]

    def create_token(
        self, *, user: str | None = None, name: str = "cli", expires_in_days: int | None = 90
    ) -> api.CreatedToken:
        body = {"user": user, "name": name, "expires_in_days": expires_in_days}
        return api.CreatedToken.model_validate(self._send("POST", "/tokens", json=body).json())

    def list_tokens(self) -> list[api.Token]:
        return [api.Token.model_validate(t) for t in self._send("GET", "/tokens").json()]

    def revoke_token(self, token_id: int) -> api.Token:
        return api.Token.model_validate(self._send("DELETE", f"/tokens/{token_id}").json())

    # ---- webhooks -----------------------------------------------------------------------------------------

    def add_webhook(self, project: str, url: str, events: list[str] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"url": url, **({"events": events} if events else {})}
        return dict(self._send("POST", f"/projects/{project}/webhooks", json=body).json())

    def list_webhooks(self, project: str) -> list[dict[str, Any]]:
        return list(self._send("GET", f"/projects/{project}/webhooks").json())

    def remove_webhook(self, project: str, webhook_id: int) -> None:
        self._send("DELETE", f"/projects/{project}/webhooks/{webhook_id}")

    def webhook_deliveries(self, project: str, webhook_id: int) -> list[dict[str, Any]]:
        return list(self._send("GET", f"/projects/{project}/webhooks/{webhook_id}/deliveries").json())

    # ---- models and endpoints -----------------------------------------------------------------------------

    def list_models(self, project: str | None = None) -> list[serving.RegisteredModel]:
        params = {"project": project} if project else None
        return [
            serving.RegisteredModel.model_validate(m)
            for m in self._send("GET", "/models", params=params).json()
        ]

    def show_model(self, name: str, project: str | None = None) -> serving.RegisteredModel:
        params = {"project": project} if project else None
        return serving.RegisteredModel.model_validate(
            self._send("GET", f"/models/{name}", params=params).json()
        )

    def model_version(self, name: str, version: str, project: str | None = None) -> serving.ModelVersion:
        params = {"project": project} if project else None
        response = self._send("GET", f"/models/{name}/versions/{version}", params=params)
        return serving.ModelVersion.model_validate(response.json())

    def register_model(self, name: str, job: str, trial: int | None = None) -> serving.ModelVersion:
        body = {"name": name, "job": job, "trial": trial}
        return serving.ModelVersion.model_validate(self._send("POST", "/models", json=body).json())

    def promote_model(
        self, name: str, version: str, stage: str, project: str | None = None
    ) -> serving.ModelVersion:
        params = {"project": project} if project else None
        response = self._send(
            "POST", f"/models/{name}/versions/{version}/stage", json={"stage": stage}, params=params
        )
        return serving.ModelVersion.model_validate(response.json())

    def deploy(self, body: dict[str, Any]) -> serving.DeployedEndpoint:
        return serving.DeployedEndpoint.model_validate(self._send("POST", "/endpoints", json=body).json())

    def list_endpoints(self, project: str | None = None) -> list[serving.Endpoint]:
        params = {"project": project} if project else None
        return [
            serving.Endpoint.model_validate(e) for e in self._send("GET", "/endpoints", params=params).json()
        ]

    def get_endpoint(self, name: str) -> serving.Endpoint:
        return serving.Endpoint.model_validate(self._send("GET", f"/endpoints/{name}").json())

    def endpoint_stats(self, name: str, window: int = 300) -> serving.EndpointStats:
        response = self._send("GET", f"/endpoints/{name}/stats", params={"window": window})
        return serving.EndpointStats.model_validate(response.json())

    def promote_canary(self, name: str) -> serving.Endpoint:
        return serving.Endpoint.model_validate(self._send("POST", f"/endpoints/{name}/promote").json())

    def rollback_canary(self, name: str) -> serving.Endpoint:
        return serving.Endpoint.model_validate(self._send("POST", f"/endpoints/{name}/rollback").json())

    def delete_endpoint(self, name: str) -> serving.Endpoint:
        return serving.Endpoint.model_validate(self._send("DELETE", f"/endpoints/{name}").json())

    def create_endpoint_key(self, name: str, key_name: str = "default") -> serving.CreatedEndpointKey:
        response = self._send("POST", f"/endpoints/{name}/keys", json={"name": key_name})
        return serving.CreatedEndpointKey.model_validate(response.json())

    def predict(self, name: str, inputs: list[Any], key: str | None = None) -> serving.Prediction:
        """One call of an endpoint, with its key or this client's token. Not retried (not idempotent)."""
        headers = {"Authorization": f"Bearer {key}"} if key else None
        try:
            response = self._http.post(f"/endpoints/{name}/predict", json={"inputs": inputs}, headers=headers)
        except httpx.TransportError as exc:
            raise ConnectionFailed(f"cannot reach the dljobs server at {self.url}: {_why(exc)}") from None
        return serving.Prediction.model_validate(self._check(response).json())

    # ---- health -------------------------------------------------------------------------------------------

    def health(self) -> api.Health:
        return api.Health.model_validate(self._send("GET", "/health").json())

    def ready(self) -> api.Readiness:
        response = self._http.get("/ready")
        return api.Readiness.model_validate(response.json())


def _why(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]
