"""Safe YAML reading that remembers the line of every key.

Refuses what a job spec never needs and an attacker might send: documents over 1 MiB, bytes that are not
UTF-8, control characters, duplicate keys, non-string keys, and aliases that expand into huge or endless
documents. Every refusal is a SpecError with the line (and, where there is one, the key path).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from dljobs.spec.errors import FieldError, SpecError, shown

MAX_SPEC_BYTES = 1024 * 1024
MAX_ALIASES = 64
MAX_EXPANDED_NODES = 100_000
MAX_KEY_SHOWN = 64

Path = tuple[str | int, ...]
LineMap = dict[Path, int]


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and turns a value Python cannot hold into a YAML error at its line."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise SpecError(
                    [FieldError("", f"more than {MAX_ALIASES} YAML aliases", mark.line + 1)],
                    code="spec_too_complex",
                )
        return super().compose_node(parent, index)  # type: ignore[arg-type]

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError):
            # e.g. an integer of 5,000 digits or the date 2024-02-30: PyYAML lets Python's error through
            kind = node.tag.rsplit(":", 1)[-1]
            what = {"int": "a number too large to read", "timestamp": "not a valid date"}.get(kind)
            raise yaml.constructor.ConstructorError(
                None, None, what or f"not a valid {kind} value", node.start_mark
            ) from None


def _refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    raise yaml.constructor.ConstructorError(
        None, None, f"the tag {shown(tag)} is not allowed in a job spec", node.start_mark
    )


_GuardedLoader.add_constructor(None, _refuse_tag)
# YAML 1.1 reads `1e-3` and `1.0e5` as text (its floats need a dot and a signed exponent); a learning rate is
# written that way so often that the spec reads them as YAML 1.2 does, as numbers.
_GuardedLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def decode(data: bytes | str) -> str:
    """The text of a spec, or a SpecError for one too large or not UTF-8."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError([FieldError("", too_large_message(len(raw)))], code="spec_too_large")
    if isinstance(data, str):
        return data
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            [FieldError("", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})", line)]
        ) from None


def too_large_message(size: int) -> str:
    return f"the spec is {size:,} bytes; the limit is {MAX_SPEC_BYTES:,} (1 MiB)"


def parse_yaml(data: bytes | str) -> tuple[Any, LineMap]:
    """The document and the line of each key path; SpecError for anything unsafe or malformed."""
    document, lines = _load(decode(data))
    if not isinstance(document, dict):
        raise SpecError([FieldError("", "a job spec is a mapping of keys (name:, workload:, ...)", 1)])
    return document, lines


def parse_value(text: str) -> Any:
    """One YAML value (a `--set` value), read with the same guards as a whole spec."""
    document, _ = _load(text, allow_empty=True)
    return document


def _load(text: str, allow_empty: bool = False) -> tuple[Any, LineMap]:
    lines: LineMap = {}
    loader: _GuardedLoader | None = None
    try:
        loader = _GuardedLoader(text)  # the reader refuses control characters here already
        node = loader.get_single_node()
        if node is None:
            if allow_empty:
                return None, lines
            raise SpecError([FieldError("", "the spec is empty")])
        _check_expansion(node)
        _record_lines(node, (), lines)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "unreadable"
        if exc.context and exc.context_mark and "end of stream" in problem:
            # an unclosed quote or bracket: where it opens helps more than the end of the file
            mark, problem = exc.context_mark, f"{problem} {exc.context}"
        elif exc.context and problem.startswith("but "):
            problem = f"{exc.context}, {problem}"  # "expected a single document in the stream, but found ..."
        if "'\\t'" in problem:
            problem = "a tab character: indent with spaces, not tabs"
        line = mark.line + 1 if mark else None
        # once the document is composed, a line leads back to the key written there
        raise SpecError(
            [FieldError(_path_at(line, lines), f"invalid YAML: {problem}", line)], code="invalid_yaml"
        ) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        character = f"#x{exc.character:04x}" if isinstance(exc.character, int) else shown(exc.character)
        message = f"invalid YAML: the control character {character} is not allowed (write it as an escape)"
        raise SpecError([FieldError("", message, line)], code="invalid_yaml") from None
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise SpecError([FieldError("", f"invalid YAML: {reason}")], code="invalid_yaml") from None
    except RecursionError:
        raise SpecError([FieldError("", "the spec is nested too deeply")], code="spec_too_complex") from None
    finally:
        if loader is not None:
            loader.dispose()


def _path_at(line: int | None, lines: LineMap) -> str:
    """The dotted path of the deepest key written on `line`, or '' when none is."""
    found = [path for path, at in lines.items() if at == line and path and isinstance(path[-1], str)]
    return format_path(max(found, key=len)) if found else ""


def format_path(path: Path) -> str:
    """`("training", "optimizer", "lr")` -> `training.optimizer.lr`; list items as `[0]`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            text = part if len(part) <= MAX_KEY_SHOWN else part[: MAX_KEY_SHOWN - 3] + "..."
            text = text or "''"  # an empty key still names a place
            out += f".{text}" if out else text
    return out


def _check_expansion(root: yaml.Node) -> None:
    """Refuse documents whose aliases would expand into more than MAX_EXPANDED_NODES nodes."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise SpecError(
                [FieldError("", "recursive YAML aliases", node.start_mark.line + 1)], code="spec_too_complex"
            )
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total += sum(size(v) for v in node.value)
        active.discard(key)
        sizes[key] = total
        if total > MAX_EXPANDED_NODES:
            raise SpecError(
                [
                    FieldError(
                        "",
                        f"the spec expands to more than {MAX_EXPANDED_NODES:,} values (YAML alias bomb?)",
                        node.start_mark.line + 1,
                    )
                ],
                code="spec_too_complex",
            )
        return total

    size(root)


def _record_lines(node: yaml.Node, path: Path, lines: LineMap) -> None:
    """Note the line of every key path, refusing keys that are not text and keys written twice."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == "tag:yaml.org,2002:merge":
                _record_lines(value_node, path, {})  # checks the keys merged in; their lines are the anchor's
                continue
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                if isinstance(key_node, yaml.ScalarNode):  # named by the key as written: `training.1`
                    where, message = (*path, key_node.value), "this key is not text: quote it, or remove it"
                else:
                    where, message = path, "a key here is a list or a mapping, not text: remove it"
                raise SpecError([FieldError(format_path(where), message, line)])
            key = key_node.value
            child = (*path, key)
            if key in seen:
                raise SpecError(
                    [FieldError(format_path(child), f"duplicate key (first at line {seen[key]})", line)]
                )
            seen[key] = line
            lines[child] = line
            _record_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _record_lines(item, (*path, i), lines)


def line_of(path: Path, lines: LineMap) -> int | None:
    """The line of `path`, or of its nearest ancestor that the document has."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None
