"""/api/v1/bundles/{sha256}: code directories, zipped by the CLI, stored once per content hash."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import zipfile

from fastapi import APIRouter, Depends, Request, Response

from dljobs.controller.api.context import authenticated, runtime_of, transaction
from dljobs.controller.db.models import CodeBundleModel
from dljobs.controller.errors import ApiError, invalid, not_found
from dljobs.controller.services.launching import bundle_key
from dljobs.spec.api import API_PREFIX
from dljobs.storage import check_key

BUNDLES_PREFIX = f"{API_PREFIX}/bundles"
router = APIRouter(prefix=BUNDLES_PREFIX, tags=["bundles"], dependencies=[Depends(authenticated)])
_SHA = re.compile(r"^[0-9a-f]{64}$")


def _sha(sha256: str) -> str:
    if not _SHA.match(sha256):
        raise invalid("sha256", "expected 64 lowercase hex digits", code="invalid_request")
    return sha256


_EXISTS = {200: {"description": "the bundle is stored", "content": {}}}
_UPLOAD = {
    "requestBody": {
        "required": True,
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.head("/{sha256}", response_class=Response, responses=_EXISTS)
@router.get("/{sha256}", response_class=Response, responses=_EXISTS)
async def bundle_exists(request: Request, sha256: str) -> Response:
    async with transaction(request) as (session, principal):
        principal.require_user()
        if await session.get(CodeBundleModel, _sha(sha256)) is None:
            raise not_found(f"bundle {sha256}")
    return Response(status_code=200)


@router.put(
    "/{sha256}",
    status_code=201,
    response_class=Response,
    openapi_extra=_UPLOAD,
    responses={
        200: {"description": "already stored", "content": {}},
        201: {"description": "stored", "content": {}},
    },
)
async def upload_bundle(request: Request, sha256: str) -> Response:
    """Store a zip whose SHA-256 is `sha256`. Uploading an existing bundle again is a no-op."""
    _sha(sha256)
    runtime = runtime_of(request)
    data = await request.body()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise invalid("sha256", "does not match the uploaded content", code="invalid_request")
    _check_zip(data)
    async with transaction(request) as (session, principal):
        principal.require_user()
        if await session.get(CodeBundleModel, sha256) is not None:
            return Response(status_code=200)
    await asyncio.to_thread(runtime.store.put_bytes, bundle_key(sha256), data)
    async with transaction(request) as (session, principal):
        if await session.get(CodeBundleModel, sha256) is None:
            session.add(CodeBundleModel(sha256=sha256, size=len(data), uploaded_by=principal.user_id))
    return Response(status_code=201)


MAX_UNPACKED = 1024**3


def _check_zip(data: bytes) -> None:
    """A real zip, with no path that leaves its directory and no bomb inside."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            for entry in entries:
                if entry.filename.rstrip("/"):
                    check_key(entry.filename.rstrip("/"))
            if sum(entry.file_size for entry in entries) > MAX_UNPACKED:
                raise ApiError(422, "invalid_bundle", "the bundle unpacks to more than 1 GiB")
    except zipfile.BadZipFile:
        raise ApiError(422, "invalid_bundle", "the bundle is not a zip file") from None
    except ValueError as exc:
        raise ApiError(422, "invalid_bundle", f"the bundle holds an unsafe path: {exc}") from None
