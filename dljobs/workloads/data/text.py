"""Text: JSONL files, a simple tokenizer, and a vocabulary built on the training split.

Token ids: 0 is padding, 1 an unknown token, then the most frequent training tokens (ties in
alphabetical order) up to `data.vocab_size` ids in all. Sequences are cut or padded (at the end) to
`data.max_length`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from dljobs.workloads.data.raw import LABEL_FIELD, RawData
from dljobs.workloads.data.sources import SOURCE_FIELD, Location
from dljobs.workloads.errors import WorkloadError

PAD_ID = 0
UNKNOWN_ID = 1
PAD_TOKEN = "<pad>"
UNKNOWN_TOKEN = "<unk>"
TOKENIZER = "lowercase-words"  # the name recorded in DataInfo.preprocessing["tokenizer"]
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lowercase words (with an apostrophe part, as in "don't") and single punctuation marks."""
    return _TOKEN.findall(text.lower())


def build_vocabulary(texts: Iterable[str], vocab_size: int) -> list[str]:
    """id -> token: padding, unknown, then the most frequent tokens of `texts`."""
    counts = Counter(token for text in texts for token in tokenize(text))
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [PAD_TOKEN, UNKNOWN_TOKEN, *(token for token, _ in ranked[: max(vocab_size - 2, 0)])]


def encode_texts(texts: Sequence[str], vocabulary: Sequence[str], max_length: int) -> np.ndarray:
    """Token ids (len(texts), max_length), int64: what the model takes (and what serving must send)."""
    index = {token: i for i, token in enumerate(vocabulary)}
    ids = np.zeros((len(texts), max_length), dtype=np.int64)
    for row, text in enumerate(texts):
        tokens = tokenize(text)[:max_length]
        ids[row, : len(tokens)] = [index.get(token, UNKNOWN_ID) for token in tokens]
    return ids


def read_jsonl(
    location: Location,
    *,
    text_column: str,
    label_column: str,
    needs_labels: bool,
    identity: dict[str, object],
) -> RawData:
    """One JSON object per line with a text field and (for classification/regression) a label field."""
    data = location.read_bytes()
    texts: list[str] = []
    labels: list[object] = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WorkloadError(
                f"line {number} of '{location.url}' is not JSON: {exc.msg}", field=SOURCE_FIELD
            ) from exc
        if not isinstance(record, dict):
            raise WorkloadError(f"line {number} of '{location.url}' is not a JSON object", field=SOURCE_FIELD)
        if text_column not in record:
            raise WorkloadError(
                f"line {number} has no '{text_column}' field (fields: {', '.join(sorted(record))})",
                field="data.text_column",
            )
        text = record[text_column]
        if not isinstance(text, str):
            raise WorkloadError(f"line {number}: '{text_column}' is not a string", field="data.text_column")
        texts.append(text)
        if needs_labels:
            if label_column not in record:
                raise WorkloadError(
                    f"line {number} has no '{label_column}' field (fields: {', '.join(sorted(record))})",
                    field=LABEL_FIELD,
                )
            labels.append(record[label_column])
    label_array = _label_array(labels) if needs_labels else None
    return RawData(input_kind="tokens", identity=identity, texts=texts, labels=label_array)


def _label_array(labels: list[object]) -> np.ndarray:
    if all(isinstance(v, bool) for v in labels):
        return np.asarray(labels, dtype=bool)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in labels):
        return np.asarray(labels, dtype=np.int64)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in labels):
        return np.asarray(labels, dtype=np.float64)
    if all(isinstance(v, str) for v in labels):
        return np.asarray(labels, dtype=str)
    kinds = sorted({type(v).__name__ for v in labels})
    raise WorkloadError(f"labels mix types ({', '.join(kinds)}): use strings or numbers", field=LABEL_FIELD)
