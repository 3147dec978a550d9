"""The bad-spec corpus through the loader and the real CLI: each names its field and line, `dljobs validate`
and `dljobs submit` exit 2 with one line, and submit fails before any connection (nothing started)."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dljobs.spec.errors import SpecError
from dljobs.spec.loading import load_spec_file, load_spec_text, validate_spec
from dljobs.spec.local import SERVER_FILE
from tests.cli.runner import UNREACHABLE_URL, error_lines, run_cli
from tests.spec.bad_specs import BAD_SPECS, CORPUS, BadSpec

IDS = [bad.name.removesuffix(".yaml") for bad in BAD_SPECS]
# `submit` reads a spec through the same loader as `validate`: one entry of each kind shows it stops there.
SUBMITTED = {
    "yaml-unclosed-quote.yaml",
    "duplicate-key.yaml",
    "empty.yaml",
    "wrong-type-boolean-for-number.yaml",
    "unknown-key-misspelled.yaml",
    "missing-workload.yaml",
    "zero-workers.yaml",
    "entrypoint-without-code.yaml",
    "name-with-newline.yaml",
    "alias-bomb.yaml",
    "two-mib.yaml",
    "invalid-utf8.yaml",
    "set-makes-it-invalid.yaml",
}
CASES = [(bad, "validate") for bad in BAD_SPECS] + [
    (bad, "submit") for bad in BAD_SPECS if bad.name in SUBMITTED
]
# Words of pydantic's own messages and class names that must never reach a user.
LEAKS = ("Input should", "instance of", "Spec", "pydantic", "Value error", "Traceback")

CliAnswers = dict[tuple[str, str], subprocess.CompletedProcess[str]]


def test_corpus_is_large_and_every_file_is_in_the_table() -> None:
    assert len(BAD_SPECS) >= 30
    assert len({bad.name for bad in BAD_SPECS}) == len(BAD_SPECS)
    assert {bad.name for bad in BAD_SPECS} >= SUBMITTED
    committed = {bad.name for bad in BAD_SPECS if bad.make is None and not bad.overrides}
    assert committed == {path.name for path in CORPUS.iterdir()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated-specs")


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dljobs-home")


@pytest.mark.parametrize("bad", BAD_SPECS, ids=IDS)
def test_loader_names_the_field_and_line(bad: BadSpec, generated: Path) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_file(bad.path(generated), list(bad.overrides))
    error = caught.value
    assert error.code == bad.code
    assert len(error.errors) == 1, error.errors
    first = error.errors[0]
    assert (first.path, first.line) == (bad.field, bad.line), first
    assert bad.says in first.message
    assert "\n" not in error.summary() and "\r" not in error.summary()
    assert not [word for word in LEAKS if word in first.message], first.message


@pytest.fixture(scope="module")
def cli_answers(generated: Path, cli_home: Path) -> CliAnswers:
    """`dljobs validate` and `dljobs submit` on every entry, run as real processes, a few at a time."""
    runs = []
    for bad, command in CASES:
        path = bad.path(generated)  # generated files are written here, before the processes start
        sets = [arg for override in bad.overrides for arg in ("--set", override)]
        runs.append((bad.name, command, [command, str(path), *sets]))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda run: run_cli(run[2], cli_home), runs)
        return {(name, command): result for (name, command, _), result in zip(runs, results, strict=True)}


@pytest.mark.parametrize(
    ("bad", "command"), CASES, ids=[f"{command}-{bad.name[:-5]}" for bad, command in CASES]
)
def test_cli_exits_2_with_one_line_naming_field_and_line(
    bad: BadSpec, command: str, cli_answers: CliAnswers, cli_home: Path
) -> None:
    result = cli_answers[(bad.name, command)]
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert bad.rendered() in lines[0]
    assert bad.says in lines[0]
    if command == "submit":
        # refused before any connection: no retries against the server, no local stack started
        assert "cannot reach" not in result.stderr and "Starting" not in result.stderr
        assert not (cli_home / SERVER_FILE).exists()


def _code_job(tmp_path: Path) -> tuple[Path, Path]:
    code = tmp_path / "src"
    code.mkdir()
    (code / "train.py").write_text("print('training')\n")
    (code / "weights.bin").write_bytes(os.urandom(1536 * 1024))
    spec = tmp_path / "job.yaml"
    spec.write_text("name: big-code\nworkload:\n  code: ./src\n  command: python train.py\n")
    return spec, code


def test_submit_refuses_a_code_directory_over_the_cap_before_connecting(tmp_path: Path) -> None:
    spec, code = _code_job(tmp_path)
    home = tmp_path / "home"
    result = run_cli(["submit", str(spec)], home, DLJOBS_MAX_BUNDLE_BYTES=str(2**20))
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "workload.code: " in lines[0] and "holds more than 1 MiB" in lines[0]
    assert not (home / SERVER_FILE).exists()
    # `dljobs validate` checks the file alone: the spec itself is valid
    assert run_cli(["validate", str(spec)], home).returncode == 0

    # ignored by .gitignore, the weights no longer count: the CLI goes on, and only then needs the server
    (code / ".gitignore").write_text("*.bin\n")
    result = run_cli(["submit", str(spec)], home, DLJOBS_MAX_BUNDLE_BYTES=str(2**20))
    assert result.returncode == 1, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith(
        f"error: cannot reach the dljobs server at {UNREACHABLE_URL}"
    )


def test_a_bad_bundle_cap_setting_is_invalid_input(tmp_path: Path) -> None:
    spec, _ = _code_job(tmp_path)
    result = run_cli(["submit", str(spec)], tmp_path / "home", DLJOBS_MAX_BUNDLE_BYTES="lots")
    assert result.returncode == 2
    assert error_lines(result) == [
        "error: DLJOBS_MAX_BUNDLE_BYTES='lots': expected a positive number of bytes"
    ]


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"name": "x", "workload": {"command": "echo \x00"}}, "workload.command"),
        ({"name": "ok\n", "workload": {"command": "echo"}}, "name"),
        ({"name": "x", "project": "default\n", "workload": {"command": "echo"}}, "project"),
    ],
)
def test_nul_characters_and_trailing_newlines_are_refused_by_field(
    document: dict[str, object], field: str
) -> None:
    """No database stores a NUL in text (PostgreSQL refuses one); a name has nothing after it."""
    with pytest.raises(SpecError) as refused:
        validate_spec(document)
    assert refused.value.errors[0].path == field
    with pytest.raises(SpecError) as from_yaml:
        load_spec_text('name: x\nworkload:\n  command: "echo \\0"\n')
    assert (from_yaml.value.errors[0].path, from_yaml.value.errors[0].line) == ("workload.command", 3)
