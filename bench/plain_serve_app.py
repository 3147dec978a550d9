"""The baseline of bench/serve_latency.py: the same TorchScript model as a plain Ray Serve deployment, with
the same dynamic batching and none of dljobs' layers (no controller hop, keys, limits, checks, figures)."""

from __future__ import annotations

import io
import json
from typing import Any


def build(args: dict[str, Any]) -> Any:
    import torch
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    from dljobs.storage import open_store

    max_batch = int(args.get("max_batch_size", 32))
    wait_s = float(args.get("batch_wait_ms", 2.0)) / 1000.0

    @serve.deployment(name="Plain")
    class Plain:
        def __init__(self, artifacts_uri: str) -> None:
            torch.set_num_threads(1)
            store = open_store(artifacts_uri)
            self.shape = json.loads(store.get_bytes("card.json"))["input"]["shape"]
            self.module = torch.jit.load(io.BytesIO(store.get_bytes("model.ts")), map_location="cpu").eval()

        @serve.batch(max_batch_size=max_batch, batch_wait_timeout_s=wait_s)
        async def _batch(self, requests: list[list[list[float]]]) -> list[list[dict[str, Any]]]:
            sizes = [len(r) for r in requests]
            with torch.inference_mode():
                batch = torch.tensor([x for r in requests for x in r]).reshape(-1, *self.shape)
                out = self.module(batch).softmax(-1)
            # the same answer as dljobs gives: class, index and probabilities of each input
            rows = [
                {"class": str(i), "index": i, "probabilities": [round(p, 6) for p in probabilities]}
                for i, probabilities in zip(out.argmax(-1).tolist(), out.tolist(), strict=True)
            ]
            split, start = [], 0
            for size in sizes:
                split.append(rows[start : start + size])
                start += size
            return split

        async def __call__(self, request: Request) -> JSONResponse:
            return JSONResponse({"predictions": await self._batch((await request.json())["inputs"])})

    return Plain.bind(args["artifacts_uri"])  # type: ignore[attr-defined]
