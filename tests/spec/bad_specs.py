"""The corpus of bad specs: for each, the field its first error must name, the line, and the error code.

Small cases are files in `corpus/`; the large and binary ones are written at test time (`make`). Entries with
`overrides` start from a valid file and break it with `--set`; the API takes no `--set`, so they are checked
through the loader and the CLI only. Every entry holds exactly one problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
VALID_COMMAND_JOB = HERE / "valid" / "command-job.yaml"
VALID_DIGITS_MLP = HERE / "valid" / "digits-mlp.yaml"
VALID_TEXT = "name: padded\nworkload:\n  command: echo hi\n"
TWO_MIB = 2 * 1024 * 1024


def _padded(size: int) -> bytes:
    """A valid spec followed by comment lines, `size` bytes in all."""
    head = VALID_TEXT.encode()
    line = b"# " + b"x" * 77 + b"\n"
    body = head + line * ((size - len(head)) // len(line))
    return body + b"#" * (size - len(body))


@dataclass(frozen=True)
class BadSpec:
    name: str  # a file in corpus/, or the file `make` writes
    field: str  # the path the first error names; '' for the document as a whole
    line: int | None  # the line it names; None where no line applies
    code: str  # the stable error code (CLI: exit 2; API: error.code)
    says: str = ""  # words the message must hold (a did-you-mean, a limit)
    overrides: tuple[str, ...] = ()  # --set arguments applied to valid/command-job.yaml
    make: Callable[[], bytes] | None = None  # the bytes of a generated file

    @property
    def via_api(self) -> bool:
        return not self.overrides

    def path(self, generated_dir: Path) -> Path:
        """The file to load: from the corpus, the valid base (for --set), or written into `generated_dir`."""
        if self.overrides:
            return VALID_COMMAND_JOB
        if self.make is None:
            return CORPUS / self.name
        target = generated_dir / self.name
        if not target.exists():
            target.write_bytes(self.make())
        return target

    def rendered(self) -> str:
        """How the CLI names the problem: `field (line N): ` (`spec` for the document)."""
        where = self.field or "spec"
        return f"{where} (line {self.line}): " if self.line is not None else f"{where}: "


BAD_SPECS: list[BadSpec] = [
    # YAML that does not parse
    BadSpec("yaml-unclosed-bracket.yaml", "", 5, "invalid_yaml"),
    BadSpec("yaml-unclosed-quote.yaml", "", 4, "invalid_yaml", says="quoted scalar"),
    BadSpec("yaml-bad-indentation.yaml", "", 5, "invalid_yaml"),
    BadSpec("tabs-in-indentation.yaml", "", 4, "invalid_yaml", says="indent with spaces, not tabs"),
    BadSpec("multiple-documents.yaml", "", 5, "invalid_yaml", says="single document"),
    BadSpec("raw-control-character.yaml", "", 4, "invalid_yaml", says="#x0001"),
    BadSpec("python-tag.yaml", "name", 2, "invalid_yaml", says="!!python/object/apply:os.system"),
    BadSpec("number-too-long.yaml", "retries", 5, "invalid_yaml", says="too large"),
    # documents of the wrong shape
    BadSpec("duplicate-key.yaml", "training.epochs", 8, "invalid_spec", says="first at line 6"),
    BadSpec("non-string-key.yaml", "training.1", 7, "invalid_spec", says="not text"),
    BadSpec("top-level-list.yaml", "", 1, "invalid_spec", says="mapping"),
    BadSpec("empty.yaml", "", None, "invalid_spec", says="empty"),
    BadSpec("comments-only.yaml", "", None, "invalid_spec", says="empty"),
    # wrong types
    BadSpec("wrong-type-string-for-number.yaml", "training.epochs", 6, "invalid_spec", says="'ten'"),
    BadSpec("wrong-type-boolean-for-number.yaml", "training.epochs", 6, "invalid_spec", says="got true"),
    BadSpec("wrong-type-string-for-section.yaml", "data", 5, "invalid_spec", says="expected a section"),
    BadSpec("wrong-type-list-for-section.yaml", "resources", 5, "invalid_spec", says="got a list"),
    BadSpec("wrong-type-number-for-text.yaml", "name", 2, "invalid_spec", says="put it in quotes"),
    BadSpec("betas-one-value.yaml", "training.optimizer.betas", 8, "invalid_spec", says="too few"),
    # unknown and misspelled keys, unknown names
    BadSpec("unknown-key-misspelled.yaml", "resorces", 5, "invalid_spec", says="did you mean 'resources'"),
    BadSpec(
        "unknown-nested-key.yaml", "training.optimiser", 6, "invalid_spec", says="did you mean 'optimizer'"
    ),
    BadSpec(
        "unknown-model-param.yaml", "workload.params.hiden", 6, "invalid_spec", says="did you mean 'hidden'"
    ),
    BadSpec("unknown-builtin-model.yaml", "workload.model", 4, "invalid_spec", says="did you mean 'mlp'"),
    BadSpec("unknown-builtin-dataset.yaml", "data.source", 6, "invalid_spec", says="did you mean 'digits'"),
    BadSpec("priority-misspelled.yaml", "priority", 3, "invalid_spec", says="did you mean 'high'"),
    BadSpec("version-unknown.yaml", "version", 2, "invalid_spec"),
    # missing required fields
    BadSpec("missing-name.yaml", "name", 2, "invalid_spec", says="required"),
    BadSpec("missing-workload.yaml", "workload", 2, "invalid_spec", says="required"),
    BadSpec("missing-data-source.yaml", "data.source", 5, "invalid_spec", says="required"),
    # zero, negative and absurd sizes
    BadSpec("zero-workers.yaml", "resources.workers", 6, "invalid_spec", says="at least 1"),
    BadSpec("negative-cpus.yaml", "resources.cpus_per_worker", 6, "invalid_spec", says="greater than 0"),
    BadSpec("negative-learning-rate.yaml", "training.optimizer.lr", 7, "invalid_spec", says="greater than 0"),
    BadSpec("absurd-workers.yaml", "resources.workers", 6, "invalid_spec", says="at most 1024"),
    BadSpec("absurd-memory.yaml", "resources.memory_per_worker", 6, "invalid_spec", says="64Ti"),
    BadSpec("absurd-batch-size.yaml", "training.batch_size", 6, "invalid_spec", says="at most"),
    # fields that contradict each other
    BadSpec("workload-model-and-command.yaml", "workload", 3, "invalid_spec", says="exactly one"),
    BadSpec("entrypoint-without-code.yaml", "workload.code", 3, "invalid_spec", says="entrypoint"),
    BadSpec("nesterov-with-adam.yaml", "training.optimizer.nesterov", 8, "invalid_spec", says="sgd"),
    BadSpec("fp16-without-gpus.yaml", "training.precision", 6, "invalid_spec", says="GPUs"),
    BadSpec(
        "transformer-heads-do-not-divide.yaml", "workload.params.d_model", 6, "invalid_spec", says="nhead"
    ),
    BadSpec("splits-too-large.yaml", "data.test_split", 8, "invalid_spec", says="0.95"),
    BadSpec("s3-source-without-key.yaml", "data.source", 6, "invalid_spec", says="s3://BUCKET/KEY"),
    # durations
    BadSpec("bad-duration.yaml", "timeout", 5, "invalid_spec", says="'2 hours' is not a duration"),
    BadSpec("negative-timeout.yaml", "timeout", 5, "invalid_spec", says="positive"),
    BadSpec("timeout-over-a-year.yaml", "timeout", 5, "invalid_spec", says="366d"),
    # names that could escape a path or a log line
    BadSpec("name-with-slash.yaml", "name", 2, "invalid_spec", says="'team/job' is not a name"),
    BadSpec("name-with-path-traversal.yaml", "name", 2, "invalid_spec", says="is not a name"),
    BadSpec("name-with-newline.yaml", "name", 2, "invalid_spec", says="'first\\nsecond'"),
    BadSpec("name-with-control-character.yaml", "name", 2, "invalid_spec", says="'ring\\x07bell'"),
    # documents built to exhaust the reader
    BadSpec("alias-bomb.yaml", "", 7, "spec_too_complex", says="alias bomb"),
    BadSpec("recursive-alias.yaml", "", 3, "spec_too_complex", says="recursive"),
    BadSpec("too-many-aliases.yaml", "", 71, "spec_too_complex", says="more than 64 YAML aliases"),
    # generated at test time: sizes and encodings
    BadSpec(
        "over-one-mib.yaml",
        "",
        None,
        "spec_too_large",
        says="limit is 1,048,576",
        make=lambda: _padded(1536 * 1024),
    ),
    BadSpec(
        "two-mib.yaml",
        "",
        None,
        "spec_too_large",
        says="the spec is 2,097,152 bytes",
        make=lambda: _padded(TWO_MIB),
    ),
    BadSpec(
        "invalid-utf8.yaml",
        "",
        3,
        "invalid_spec",
        says="not UTF-8",
        make=lambda: b"name: latin\nworkload:\n  command: echo caf\xe9\n",
    ),
    BadSpec("utf16.yaml", "", 1, "invalid_spec", says="not UTF-8", make=lambda: VALID_TEXT.encode("utf-16")),
    # broken by --set
    BadSpec(
        "set-through-a-value.yaml",
        "name",
        None,
        "invalid_override",
        says="not a section",
        overrides=("name.first=x",),
    ),
    BadSpec(
        "set-without-equals.yaml",
        "training.epochs",
        None,
        "invalid_override",
        says="FIELD.PATH=VALUE",
        overrides=("training.epochs",),
    ),
    BadSpec("set-empty-path.yaml", "", None, "invalid_override", says="FIELD.PATH=VALUE", overrides=("=3",)),
    BadSpec(
        "set-makes-it-invalid.yaml",
        "resources.workers",
        None,
        "invalid_spec",
        says="(from --set)",
        overrides=("resources.workers=0",),
    ),
    BadSpec(
        "set-unknown-field.yaml",
        "training.epocs",
        None,
        "invalid_spec",
        says="did you mean 'epochs'?) (from --set)",
        overrides=("training.epocs=3",),
    ),
]
