"""Safe YAML reading that remembers the line of every key.

Refuses what a job spec never needs and an attacker might send: documents over 1 MiB, bytes that are not
UTF-8, duplicate keys, non-string keys, and alias chains that expand into huge documents.
"""

from __future__ import annotations

from typing import Any

import yaml

from dljobs.spec.errors import FieldError, SpecError

MAX_SPEC_BYTES = 1024 * 1024
MAX_ALIASES = 64
MAX_EXPANDED_NODES = 100_000

Path = tuple[str | int, ...]
LineMap = dict[Path, int]


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that counts aliases and refuses duplicate or non-string keys."""

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

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                raise SpecError(
                    [FieldError(str(key), "keys must be text (quote them)", key_node.start_mark.line + 1)]
                )
            if key in seen:
                raise SpecError(
                    [
                        FieldError(
                            key, f"duplicate key (first at line {seen[key]})", key_node.start_mark.line + 1
                        )
                    ]
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def decode(data: bytes | str) -> str:
    """The text of a spec, or a SpecError for one too large or not UTF-8."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > MAX_SPEC_BYTES:
        raise SpecError(
            [FieldError("", f"the spec is {len(raw):,} bytes; the limit is {MAX_SPEC_BYTES:,} (1 MiB)")],
            code="spec_too_large",
        )
    if isinstance(data, str):
        return data
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            [FieldError("", f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})", line)]
        ) from None


def parse_yaml(data: bytes | str) -> tuple[Any, LineMap]:
    """The document and the line of each key path; SpecError for anything unsafe or malformed."""
    text = decode(data)
    loader = _GuardedLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise SpecError([FieldError("", "the spec is empty")])
        _check_expansion(node)
        lines: LineMap = {}
        _record_lines(node, (), lines)
        document = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(
            [FieldError("", f"invalid YAML: {problem}", mark.line + 1 if mark else None)], code="invalid_yaml"
        ) from None
    except yaml.YAMLError as exc:  # reader errors: control characters and the like
        position = getattr(exc, "position", None)
        line = text[:position].count("\n") + 1 if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or str(exc).splitlines()[0]
        raise SpecError([FieldError("", f"invalid YAML: {reason}", line)], code="invalid_yaml") from None
    except RecursionError:
        raise SpecError([FieldError("", "the spec is nested too deeply")], code="spec_too_complex") from None
    finally:
        loader.dispose()
    if not isinstance(document, dict):
        raise SpecError([FieldError("", "a job spec is a mapping of keys (name:, workload:, ...)", 1)])
    return document, lines


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
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                child = (*path, key_node.value)
                lines[child] = key_node.start_mark.line + 1
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
