"""File loaders on files written into tmp_path: CSV, Parquet, NPZ, image folders, JSONL; and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from dljobs.workloads.data import load_data
from dljobs.workloads.data.text import build_vocabulary, encode_texts, tokenize
from dljobs.workloads.errors import WorkloadError
from tests.workloads import job_spec


def _table(rows: int = 60, seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rows), rng.normal(size=rows) * 10 + 5
    return {
        "a": a.tolist(),
        "b": b.tolist(),
        "count": rng.integers(0, 5, rows).tolist(),
        "label": ["yes" if v > 0 else "no" for v in a],
        "price": (3 * a + 0.1 * b).tolist(),
    }


def _write_csv(path: Path, columns: dict[str, list]) -> Path:
    names = list(columns)
    lines = [",".join(names)] + [
        ",".join(str(columns[n][i]) for n in names) for i in range(len(columns[names[0]]))
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _error(spec, field: str) -> WorkloadError:
    with pytest.raises(WorkloadError) as caught:
        load_data(spec, seed=0)
    assert caught.value.field == field, str(caught.value)
    return caught.value


# --- CSV ------------------------------------------------------------------------------------------------


def test_csv_with_string_labels_gives_named_classes(tmp_path):
    columns = _table()
    del columns["price"]
    path = _write_csv(tmp_path / "table.csv", columns)
    data = load_data(job_spec(f"file://{path}"), seed=0)
    info = data.info
    assert (info.task, info.input_kind, info.input_shape) == ("classification", "tabular", (3,))
    assert info.class_names == ["no", "yes"] and info.num_classes == 2
    assert [f["name"] for f in info.feature_summary["features"]] == ["a", "b", "count"]
    x, y = data.train[:]
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert info.num_train + info.num_val + info.num_test == 60


def test_csv_with_float_labels_is_regression(tmp_path):
    columns = _table()
    del columns["label"]
    path = _write_csv(tmp_path / "prices.csv", columns)
    data = load_data(job_spec(f"file://{path}", label_column="price"), seed=0)
    assert data.info.task == "regression" and data.info.target_dim == 1 and data.info.num_classes is None
    _, y = data.train[:]
    assert y.dtype == torch.float32 and y.shape == (data.info.num_train, 1)


def test_csv_with_integer_labels_maps_them_to_class_indices(tmp_path):
    path = _write_csv(tmp_path / "ints.csv", {"x": list(range(30)), "label": [3, 7, 9] * 10})
    data = load_data(job_spec(f"file://{path}"), seed=0)
    assert data.info.class_names == ["3", "7", "9"]
    _, y = data.train[:]
    assert set(y.tolist()) == {0, 1, 2}


def test_a_corrupt_csv_names_the_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n5,6,7,z\n8,9,w\n")
    error = _error(job_spec(f"file://{path}"), "data.source")
    assert "line 4" in str(error)


def test_a_missing_label_column_lists_the_columns(tmp_path):
    path = _write_csv(tmp_path / "t.csv", {"a": [1, 2, 3], "b": [4, 5, 6], "target": [0, 1, 0]})
    error = _error(job_spec(f"file://{path}"), "data.label_column")
    assert "'label'" in str(error) and "a, b, target" in str(error)


def test_a_text_feature_column_is_named(tmp_path):
    path = _write_csv(
        tmp_path / "t.csv", {"a": [1, 2, 3], "colour": ["red", "blue", "red"], "label": [0, 1, 0]}
    )
    error = _error(job_spec(f"file://{path}"), "data.source")
    assert "'colour'" in str(error) and "red" in str(error)


def test_missing_values_are_reported(tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("a,b,label\n1,2,x\n3,,y\n")
    assert "'b'" in str(_error(job_spec(f"file://{path}"), "data.source"))


def test_a_source_that_does_not_exist(tmp_path):
    error = _error(job_spec(f"file://{tmp_path / 'nowhere.csv'}"), "data.source")
    assert "does not exist" in str(error)


def test_an_empty_data_set(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("a,b,label\n")
    assert "no rows" in str(_error(job_spec(f"file://{path}"), "data.source"))


def test_a_single_class_cannot_be_learned(tmp_path):
    path = _write_csv(tmp_path / "one.csv", {"a": [1, 2, 3], "label": ["x", "x", "x"]})
    assert "single class" in str(_error(job_spec(f"file://{path}"), "data.label_column"))


def test_an_unknown_extension_asks_for_the_format(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"1,2\n")
    _error(job_spec(f"file://{path}"), "data.format")
    _write_csv(tmp_path / "real.csv", {"a": [1.0, 2.0, 3.0, 4.0], "label": [0, 1, 0, 1]}).rename(path)
    assert load_data(job_spec(f"file://{path}", format="csv"), seed=0).info.input_shape == (1,)


def test_an_autoencoder_needs_no_label_column(tmp_path):
    path = _write_csv(
        tmp_path / "features.csv", {"a": [1.0, 2.0, 3.0, 4.0, 5.0], "b": [2.0, 1.0, 0.0, 1.0, 2.0]}
    )
    data = load_data(job_spec(f"file://{path}", "autoencoder"), seed=0)
    assert data.info.task == "reconstruction" and data.info.input_shape == (2,)


# --- Parquet --------------------------------------------------------------------------------------------


def test_parquet_file_and_directory(tmp_path):
    columns = _table(80)
    del columns["price"]
    pq.write_table(pa.table(columns), tmp_path / "one.parquet")
    single = load_data(job_spec(f"file://{tmp_path / 'one.parquet'}"), seed=0)
    assert single.info.input_shape == (3,) and single.info.class_names == ["no", "yes"]

    folder = tmp_path / "parts"
    folder.mkdir()
    table = pa.table(columns)
    pq.write_table(table.slice(0, 40), folder / "part-0.parquet")
    pq.write_table(table.slice(40), folder / "part-1.parquet")
    parts = load_data(job_spec(f"file://{folder}"), seed=0)
    assert parts.info.num_train + parts.info.num_val + parts.info.num_test == 80
    # Same rows, same content: the splits hold the same examples.
    assert torch.equal(parts.train[:][0], single.train[:][0])


def test_a_corrupt_parquet_file(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    _error(job_spec(f"file://{path}"), "data.source")


# --- NPZ ------------------------------------------------------------------------------------------------


def test_npz_arrays_of_every_kind(tmp_path):
    rng = np.random.default_rng(0)
    cases = {
        "tabular": (rng.normal(size=(40, 5)), "mlp", (5,)),
        "sequence": (rng.normal(size=(40, 12, 2)), "gru", (12, 2)),
        "image": (rng.uniform(size=(40, 1, 6, 6)), "cnn", (1, 6, 6)),
        "tokens": (rng.integers(0, 30, (40, 9)), "lstm", (9,)),
    }
    for kind, (x, model, shape) in cases.items():
        path = tmp_path / f"{kind}.npz"
        np.savez(path, x=x, y=np.arange(40) % 4)
        info = load_data(job_spec(f"file://{path}", model), seed=0).info
        assert (info.input_kind, info.input_shape, info.num_classes) == (kind, shape, 4)
    assert info.vocab_size == 30 and info.input_dtype == "int64"


def test_npz_regression_targets_keep_their_width(tmp_path):
    path = tmp_path / "multi.npz"
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.normal(size=(30, 4)), y=rng.normal(size=(30, 2)))
    data = load_data(job_spec(f"file://{path}"), seed=0)
    assert data.info.task == "regression" and data.info.target_dim == 2
    assert data.train[:][1].shape == (data.info.num_train, 2)


def test_npz_without_the_arrays(tmp_path):
    np.savez(tmp_path / "nox.npz", features=np.zeros((4, 2)), y=np.zeros(4))
    assert "arrays: features, y" in str(_error(job_spec(f"file://{tmp_path / 'nox.npz'}"), "data.source"))
    np.savez(tmp_path / "noy.npz", x=np.zeros((4, 2)))
    _error(job_spec(f"file://{tmp_path / 'noy.npz'}"), "data.label_column")
    # an autoencoder needs no labels
    assert load_data(job_spec(f"file://{tmp_path / 'noy.npz'}", "autoencoder"), seed=0).info.input_shape == (
        2,
    )


# --- image folders --------------------------------------------------------------------------------------


def _image_folder(
    root: Path, classes=("circle", "square"), per_class: int = 6, size=(10, 10), mode: str = "RGB"
):
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
            pixels = (rng.uniform(size=shape) * 255).astype(np.uint8)
            Image.fromarray(pixels, mode=mode).save(root / name / f"{i}.png")
    return root


def test_image_folder_gives_one_class_per_subdirectory(tmp_path):
    root = _image_folder(tmp_path / "pets", classes=("cat", "dog", "fox"))
    data = load_data(job_spec(f"file://{root}", "cnn", validation_split=0.2, test_split=0.0), seed=0)
    info = data.info
    assert (info.input_kind, info.input_shape, info.class_names) == (
        "image",
        (3, 10, 10),
        ["cat", "dog", "fox"],
    )
    assert info.num_train + info.num_val == 18 and data.test is None
    grey = load_data(job_spec(f"file://{_image_folder(tmp_path / 'grey', mode='L')}", "cnn"), seed=0)
    assert grey.info.input_shape == (1, 10, 10)


def test_image_folder_resizes_to_image_size(tmp_path):
    root = _image_folder(tmp_path / "a", classes=("x",), size=(10, 10))
    _image_folder(root, classes=("y",), size=(14, 8))
    error = _error(job_spec(f"file://{root}", "cnn"), "data.image_size")
    assert "10x10" in str(error) and "14x8" in str(error)
    data = load_data(job_spec(f"file://{root}", "cnn", image_size=16), seed=0)
    assert data.info.input_shape == (3, 16, 16)


def test_image_folder_errors(tmp_path):
    root = _image_folder(tmp_path / "imgs", per_class=3)
    (root / "circle" / "broken.png").write_bytes(b"not a png")
    assert "broken.png" in str(_error(job_spec(f"file://{root}", "cnn"), "data.source"))
    loose = _image_folder(tmp_path / "loose", classes=("only",))
    Image.new("RGB", (10, 10)).save(loose / "stray.png")
    assert "stray.png" in str(_error(job_spec(f"file://{loose}", "cnn"), "data.source"))
    (tmp_path / "none").mkdir()
    assert "no images" in str(_error(job_spec(f"file://{tmp_path / 'none'}", "cnn"), "data.source"))


# --- JSONL text -----------------------------------------------------------------------------------------


def test_tokenizer_and_vocabulary():
    assert tokenize("Don't STOP, it's great!") == ["don't", "stop", ",", "it's", "great", "!"]
    vocabulary = build_vocabulary(["b a a", "c a b"], vocab_size=4)
    assert vocabulary == ["<pad>", "<unk>", "a", "b"]  # most frequent first, ties alphabetical
    ids = encode_texts(["a c b", ""], vocabulary, max_length=4)
    assert ids.tolist() == [[2, 1, 3, 0], [0, 0, 0, 0]]


def test_jsonl_text_with_a_vocabulary_from_the_training_split(tmp_path):
    path = tmp_path / "reviews.jsonl"
    lines = []
    for i in range(40):
        good = i % 2 == 0
        lines.append(
            json.dumps({"text": f"the film was {'good' if good else 'bad'} uniq{i}", "label": int(good)})
        )
    path.write_text("\n".join(lines) + "\n\n")
    data = load_data(
        job_spec(f"file://{path}", "lstm", max_length=6, validation_split=0.5, test_split=0.0), seed=0
    )
    info = data.info
    assert (info.input_kind, info.input_shape, info.input_dtype) == ("tokens", (6,), "int64")
    vocabulary = info.preprocessing["vocabulary"]
    assert vocabulary[:2] == ["<pad>", "<unk>"] and info.vocab_size == len(vocabulary)
    # each text has a word of its own: only those of the training texts made it into the vocabulary
    assert sum(token.startswith("uniq") for token in vocabulary) == info.num_train == 20
    val, _ = data.val[:]
    assert (val[:, 4] == 1).all()  # validation's own words are unknown
    assert (val[:, 5] == 0).all()  # padded to max_length


def test_jsonl_errors_name_the_line_and_field(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine", "label": 1}\n{"text": "broken", \n')
    assert "line 2" in str(_error(job_spec(f"file://{path}", "lstm"), "data.source"))
    path.write_text('{"body": "no text field", "label": 1}\n')
    assert "body" in str(_error(job_spec(f"file://{path}", "lstm"), "data.text_column"))
    path.write_text('{"text": "no label"}\n')
    _error(job_spec(f"file://{path}", "lstm"), "data.label_column")
