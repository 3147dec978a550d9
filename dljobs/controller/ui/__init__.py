"""The web dashboard: static HTML, CSS and ES modules shipped in the package, served at `/ui/`.

The pages hold no secrets and need no token to load; every figure they show comes from `/api/v1` with the
token the user typed into the login page (kept in the tab's sessionStorage, sent as `Authorization: Bearer`).
The responses carry a strict Content-Security-Policy: scripts, styles and connections from this origin only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

UI_PREFIX = "/ui"
STATIC_DIR = Path(__file__).resolve().parent / "static"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # revalidate on every load, so an upgraded controller serves its own pages (ETag makes that cheap)
    "Cache-Control": "no-cache",
}


class DashboardFiles(StaticFiles):
    """The dashboard's files with the security headers on every response (404s included)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:  # 404, 405: plain text, never the API's JSON shape
            response = PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_dashboard(app: FastAPI) -> None:
    """`/ui/` serves the dashboard; `/` sends a browser there."""
    app.mount(UI_PREFIX, DashboardFiles(directory=STATIC_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=307)
