"""`dljobs validate` fuzzed in-process (the CLI's own entry point, under Click's test isolation): a mutated
spec file is valid (exit 0), or refused with exit 2 and one line per problem, each naming its field and line;
never a traceback, never another exit code."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dljobs.cli.main import main
from tests.spec.test_fuzz_specs import mutated_documents

# "error: /path/spec.yaml: workload.params.hidden (line 4): message"
PROBLEM = re.compile(r"^error: .*?spec\.yaml: (?P<field>.+?) \(line (?P<line>\d+)\): \S")
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
_DIR = Path(tempfile.mkdtemp(prefix="dljobs-validate-fuzz-"))


def validate(text: str) -> tuple[int, str, str]:
    """`dljobs validate SPEC` through `main()`, as the console script runs it: (exit code, stdout, stderr)."""
    spec = _DIR / "spec.yaml"
    spec.write_bytes(text.encode("utf-8", "surrogatepass"))
    argv = sys.argv
    with CliRunner().isolation() as (out, err, _):
        sys.argv = ["dljobs", "validate", str(spec)]
        try:
            main()
            code: Any = 0
        except SystemExit as exit_:
            code = exit_.code
        finally:
            sys.argv = argv
        return int(code or 0), out.getvalue().decode(), err.getvalue().decode()


@FUZZ
@given(mutated_documents())
def test_every_rejection_exits_2_and_names_a_field(document: dict[str, Any]) -> None:
    code, out, err = validate(yaml.safe_dump(document))
    assert "Traceback" not in out + err
    assert code in (0, 2), (code, out, err)
    if code == 0:
        assert out.startswith("valid: ") and not err
        return
    lines = err.splitlines()
    assert lines, "refused without a word"
    for line in lines:
        match = PROBLEM.match(line)
        assert match and match["field"] != "spec", line  # the field, then the line it is on


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=200))
def test_any_text_exits_0_or_2_without_a_traceback(text: str) -> None:
    code, out, err = validate(text)
    assert code in (0, 2), (code, out, err)
    assert "Traceback" not in out + err
    if code == 2:
        assert all(line.startswith("error: ") for line in err.splitlines()), err
