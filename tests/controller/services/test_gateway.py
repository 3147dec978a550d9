"""The gateway's figures reach the database whatever happens between measuring and writing them: an endpoint
deleted meanwhile takes only its own figures along, and a database out of reach loses none."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from dljobs.controller.db.engine import create_engine, session_factory
from dljobs.controller.ray_head import free_port
from dljobs.controller.services.gateway import flush_stats
from tests.support.serving import digits_inputs, trained_job

GONE = 10**9  # an endpoint id no row has (deleted since its requests were counted)


def counted_endpoint(api, admin, settings):  # type: ignore[no-untyped-def]
    """An endpoint's routing and the gateway of the app that serves it (nothing runs it on Serve)."""
    job = trained_job(api, admin, settings, name="counted-model")
    created = api.post("/api/v1/endpoints", json={"name": "counted", "job": str(job["id"])}, headers=admin)
    assert created.status_code == 201, created.text
    gateway = api.app.state.runtime.gateway
    return api.portal.call(gateway.route, "counted"), gateway


def requests_counted(api, admin) -> int:  # type: ignore[no-untyped-def]
    versions = api.get("/api/v1/endpoints/counted/stats", headers=admin).json()["versions"]
    return sum(version["requests"] for version in versions)


def test_a_deleted_endpoints_figures_do_not_take_the_others_with_them(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    admin = identities.admin.headers
    route, gateway = counted_endpoint(api, admin, settings)
    gateway.stats.of(route.endpoint_id, 1, {}).record(3.0, digits_inputs(2), [{"class": "1"}] * 2)
    gateway.stats.of(GONE, 1, {}).record(4.0, digits_inputs(1), [{"class": "2"}])
    assert requests_counted(api, admin) == 1  # the stats route flushes first


def test_figures_the_database_could_not_take_are_written_by_the_next_flush(api, identities, settings) -> None:  # type: ignore[no-untyped-def]
    admin = identities.admin.headers
    route, gateway = counted_endpoint(api, admin, settings)
    database = gateway.sessions
    nowhere = create_engine(f"postgresql+asyncpg://dljobs@127.0.0.1:{free_port()}/dljobs")  # nothing listens
    gateway.sessions = session_factory(nowhere)  # every flush fails from here on, the deployer's too
    try:
        gateway.stats.of(route.endpoint_id, 1, {}).record(3.0, digits_inputs(1), [{"class": "1"}])
        with pytest.raises((DBAPIError, OSError)):
            api.portal.call(flush_stats, gateway)
    finally:
        gateway.sessions = database
        api.portal.call(nowhere.dispose)
    gateway.stats.of(route.endpoint_id, 1, {}).record(5.0, digits_inputs(1), [{"class": "1"}])
    assert requests_counted(api, admin) == 2  # the row kept, and the one measured since
