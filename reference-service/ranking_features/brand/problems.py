"""What is wrong with a brand file, in words: ``BrandProblem`` and ``BrandFileError``.

pydantic's validation errors are turned into problems that read
``<file>: <field.path>: <what was expected>, got <what was found>``, with a spelling
suggestion for an unknown key, so an error says where to look and what to write.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ranking_features.brand.fields import NAME_HINT
from ranking_features.brand.model import Brand


@dataclass(frozen=True)
class BrandProblem:
    """One thing wrong with one brand file."""

    file: str
    field: str
    expected: str
    found: str
    line: int | None = None
    """The 1-based line the problem is on, when the YAML says (duplicate keys)."""

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.expected}, got {self.found}"


class BrandFileError(Exception):
    """A brand file (or a set of them) failed validation; ``problems`` says where and why."""

    def __init__(self, problems: Sequence[BrandProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


_DEFAULT = object()


def describe(value: Any) -> str:
    """A value as an error message quotes it: short, and the same for YAML's types."""
    if value is _DEFAULT:
        return "its default"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return repr(text)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    return type(value).__name__


_EXPECTATIONS: dict[str, str] = {
    "missing": "a value (this field is required)",
    "extra_forbidden": "no such key (remove it or check its spelling)",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "enum": "one of {expected}",
}

_FIELD_HINTS: dict[str, str] = {
    "name": NAME_HINT,
    "display_name": "printable text (no control characters or line breaks)",
    "owner": "an email address",
    "cost_center": "1-32 letters, digits, '-' or '_'",
}


def _expectation(error: Mapping[str, Any]) -> str:
    kind = str(error["type"])
    context = error.get("ctx") or {}
    last = str(error["loc"][-1]) if error["loc"] else ""
    if kind in {"greater_than_equal", "greater_than", "less_than_equal", "less_than"}:
        symbol = {
            "greater_than_equal": ">=",
            "greater_than": ">",
            "less_than_equal": "<=",
            "less_than": "<",
        }[kind]
        bound = next(iter(context.values()))
        return f"a number {symbol} {bound}"
    if kind == "string_pattern_mismatch":
        return _FIELD_HINTS.get(last, f"text matching {context.get('pattern')}")
    if kind in {"string_too_short", "too_short"}:
        return f"at least {context.get('min_length')} item(s)"
    if kind in {"string_too_long", "too_long"}:
        return f"at most {context.get('max_length')} character(s)"
    if kind == "value_error" and "reason" in context:
        # pydantic's EmailStr: email-validator's reason, which says what is wrong with it.
        reason = str(context["reason"]).rstrip(".")
        for subject in ("An email address ", "The email address "):
            reason = reason.removeprefix(subject)
        return f"{_FIELD_HINTS.get(last, 'a valid value')} ({reason[:1].lower()}{reason[1:]})"
    if kind == "value_error":
        return str(context.get("error", error["msg"])).removeprefix("Value error, ")
    template = _EXPECTATIONS.get(kind)
    if template is not None:
        return template.format(expected=context.get("expected", ""))
    return str(error["msg"]).replace("Input should be", "").strip() or kind


def _annotation_fields(annotation: Any, path: Sequence[str]) -> list[str]:
    """The field names of the model found at ``path`` below ``annotation``; [] if none."""
    node = annotation
    for part in [*path, None]:
        while get_origin(node) in {Union, types.UnionType, Annotated}:
            args = [a for a in get_args(node) if a is not type(None)]
            node = args[0] if len(args) == 1 or get_origin(node) is Annotated else None
        if get_origin(node) is dict:
            if part is None:
                return []
            node = get_args(node)[1]
        elif isinstance(node, type) and issubclass(node, BaseModel):
            if part is None:
                return list(node.model_fields)
            field = node.model_fields.get(part)
            if field is None:
                return []
            node = field.annotation
        else:
            return []
    return []


def _unknown_key_expectation(location: Sequence[str]) -> str:
    *parent, key = location
    close = difflib.get_close_matches(key, _annotation_fields(Brand, parent), n=1, cutoff=0.6)
    if close:
        return f"no such key (did you mean {close[0]!r}?)"
    return _EXPECTATIONS["extra_forbidden"]


def problems_from_validation(file: str, error: ValidationError) -> list[BrandProblem]:
    """One problem per pydantic error, located in the file and said in words."""
    problems = []
    for item in error.errors():
        location = [str(part) for part in item["loc"]]
        expected = _expectation(item)
        if item["type"] == "extra_forbidden":
            expected = _unknown_key_expectation(location)
        # A model validator reports on the model; it names the field in its message.
        found_value = item.get("input")
        field_name, _, rest = expected.partition(": ")
        if item["type"] == "value_error" and field_name in _annotation_fields(Brand, location):
            expected = rest
            location.append(field_name)
            if isinstance(found_value, Mapping):
                # Not in the file: the model's default was checked.
                found_value = found_value.get(field_name, _DEFAULT)
        found = "nothing" if item["type"] == "missing" else describe(found_value)
        if item["type"] == "extra_forbidden":
            found = repr(location[-1])
        problems.append(BrandProblem(file, ".".join(location) or "(file)", expected, found))
    return problems
