"""A model version as a predictor: the TorchScript module and model card from the artifact store, and
the formatting of its outputs by task. Plain Python and torch, testable without Ray."""

from __future__ import annotations

import io
import json
import warnings
from typing import Any

from dljobs.spec.inputs import InputSchema, check_inputs
from dljobs.storage import open_store

MODEL = "model.ts"
CARD = "card.json"


class Predictor:
    def __init__(self, artifacts_uri: str, *, s3_endpoint_url: str | None = None, threads: int = 1) -> None:
        import torch

        torch.set_num_threads(max(threads, 1))
        store = open_store(artifacts_uri, endpoint_url=s3_endpoint_url)
        self.card: dict[str, Any] = json.loads(store.get_bytes(CARD))
        self.schema = InputSchema.from_card(self.card)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            self.module = torch.jit.load(io.BytesIO(store.get_bytes(MODEL)), map_location="cpu").eval()
        self.class_names: list[str] | None = (self.card.get("output") or {}).get("class_names")

    def check(self, inputs: Any, max_inputs: int) -> list[Any]:
        return check_inputs(self.schema, inputs, max_inputs)

    def predict(self, inputs: list[Any]) -> list[Any]:
        """Checked inputs (flat lists, or seeds for a generator) to one prediction each."""
        import torch

        dtype = torch.int64 if self.schema.dtype.startswith("int") else torch.float32
        rows = [self._row(item) for item in inputs]
        batch = torch.tensor(rows, dtype=dtype).reshape(len(rows), *self.schema.shape)
        with torch.inference_mode():
            output = self.module(batch)
        return self._format(output)

    def _row(self, item: Any) -> list[float]:
        if isinstance(item, int):  # a generator's seed
            import torch

            noise = torch.randn(self.schema.size, generator=torch.Generator().manual_seed(item))
            return noise.tolist()  # type: ignore[no-any-return]
        return item  # type: ignore[no-any-return]

    def _format(self, output: Any) -> list[Any]:
        task = self.schema.task
        if task == "classification":
            probabilities = output.float().softmax(dim=-1)
            best = probabilities.argmax(dim=-1).tolist()
            rows = probabilities.tolist()
            names = self.class_names
            return [
                {
                    "class": names[i] if names and i < len(names) else i,
                    "index": i,
                    "probabilities": [round(p, 6) for p in row],
                }
                for i, row in zip(best, rows, strict=True)
            ]
        if task == "regression":
            values = output.float().reshape(output.shape[0], -1).tolist()
            return [row[0] if len(row) == 1 else row for row in values]
        key = "reconstruction" if task == "reconstruction" else "sample"
        return [{key: row} for row in output.float().tolist()]
