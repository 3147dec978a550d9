"""Ray Serve's REST API on the Ray dashboard (`/api/serve/applications/`), with token auth.

`PUT` is declarative: the config lists every application Serve should run, and Serve removes the ones it
does not list. The deployer therefore always sends the whole set of dljobs applications.
"""

from __future__ import annotations

from typing import Any

import httpx

from dljobs.controller.launchers.base import LaunchError

APPLICATIONS = "/api/serve/applications/"


class ServeClient:
    def __init__(self, address: str, token: str | None, timeout: float = 15.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.address = address.rstrip("/")
        self._client = httpx.AsyncClient(base_url=self.address, headers=headers, timeout=timeout)

    async def close(self) -> None:
        await self._client.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LaunchError(
                f"Ray Serve at {self.address} is unreachable: {exc.__class__.__name__}"
            ) from None
        if response.status_code in (401, 403):
            raise LaunchError(f"the Ray cluster refused our token ({response.status_code})")
        return response

    async def apply(self, config: dict[str, Any]) -> None:
        """Deploy `config` (a multi-application Serve config); returns once Serve accepted it."""
        response = await self._request("PUT", APPLICATIONS, json=config)
        if response.status_code != 200:
            raise LaunchError(
                f"Ray Serve refused the config ({response.status_code}): {response.text.strip()[-500:]}",
                infrastructure=response.status_code >= 500,
            )

    async def applications(self) -> dict[str, dict[str, Any]]:
        """Each application's status (`RUNNING`, `DEPLOYING`, `DEPLOY_FAILED`, ...) and message."""
        response = await self._request("GET", APPLICATIONS)
        if response.status_code != 200:
            raise LaunchError(f"reading Serve's applications failed ({response.status_code})")
        body = response.json()
        return dict(body.get("applications") or {})
