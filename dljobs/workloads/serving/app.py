"""The Serve application of one model version, built by the controller's deployer from a declarative config:

    import_path: dljobs.workloads.serving.app:build
    args: {artifacts_uri, max_batch_size, batch_wait_ms, max_inputs, s3_endpoint_url}

The deployment (`Model`) takes `POST {"inputs": [...]}` and answers `{"predictions": [...]}`. Requests are
batched dynamically (`serve.batch`): concurrent requests run through the model together. Replicas, their
CPUs and the autoscaling bounds come from the config's `deployments` section, not from here.
"""

from __future__ import annotations

from typing import Any

DEPLOYMENT = "Model"


def build(args: dict[str, Any]) -> Any:
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from dljobs.spec.inputs import InputError
    from dljobs.workloads.serving.predictor import Predictor

    max_batch = int(args.get("max_batch_size", 32))
    wait_s = float(args.get("batch_wait_ms", 2.0)) / 1000.0

    @serve.deployment(name=DEPLOYMENT)
    class Model:
        def __init__(self, artifacts_uri: str, max_inputs: int, s3_endpoint_url: str | None) -> None:
            self.predictor = Predictor(artifacts_uri, s3_endpoint_url=s3_endpoint_url)
            self.max_inputs = max_inputs

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=wait_s)
        async def _batch(self, requests: list[list[Any]]) -> list[list[Any]]:
            sizes = [len(r) for r in requests]
            flat = [item for r in requests for item in r]
            outputs = self.predictor.predict(flat)
            split, start = [], 0
            for size in sizes:
                split.append(outputs[start : start + size])
                start += size
            return split

        async def __call__(self, request: Request) -> JSONResponse:
            try:
                body = await request.json()
                inputs = self.predictor.check(
                    body.get("inputs") if isinstance(body, dict) else None, self.max_inputs
                )
            except InputError as exc:
                return JSONResponse({"error": {"field": exc.field, "message": exc.message}}, status_code=422)
            except ValueError:
                return JSONResponse(
                    {"error": {"field": "", "message": "the body is not JSON"}}, status_code=400
                )
            return JSONResponse({"predictions": await self._batch(inputs)})

    return Model.bind(  # type: ignore[attr-defined]
        args["artifacts_uri"], int(args.get("max_inputs", 256)), args.get("s3_endpoint_url")
    )
