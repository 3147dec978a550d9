"""Ray Serve's REST API on the Ray dashboard (`/api/serve/applications/`), with token auth.

`PUT` is declarative: the config lists every application Serve should run, and Serve removes the ones it
does not list. The deployer therefore always sends the whole set of dljobs applications.
"""

from __future__ import annotations

from typing import Any

from dljobs.controller.launchers.base import LaunchError, RayRestClient

APPLICATIONS = "/api/serve/applications/"


class ServeClient(RayRestClient):
    service = "Ray Serve"

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
