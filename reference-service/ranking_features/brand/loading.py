"""Reading brand files: ``load_brands`` and friends never raise anything but ``BrandFileError``.

A file is checked as bytes (size, UTF-8, no NUL), as YAML (syntax, keys given twice) and then
by the model, once as written and once per environment with its overrides merged, so a
problem an override introduces is reported under ``overrides.<env>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ranking_features.brand.fields import is_brand_name
from ranking_features.brand.model import Brand, Environment, Overrides, deep_merge
from ranking_features.brand.problems import (
    BrandFileError,
    BrandProblem,
    describe,
    problems_from_validation,
)

MAX_BRAND_FILE_BYTES = 256 * 1024
"""A brand file is a page of YAML; anything larger is a mistake, not a brand."""


def parse_brand(text: str | bytes, file: str, *, stem: str | None = None) -> Brand:
    """Validate the text of one brand file, with every environment's merged result checked too."""
    if isinstance(text, bytes):
        if len(text) > MAX_BRAND_FILE_BYTES:
            raise BrandFileError(
                [
                    BrandProblem(
                        file, "(file)", f"at most {MAX_BRAND_FILE_BYTES} bytes", f"{len(text)}"
                    )
                ]
            )
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BrandFileError(
                [BrandProblem(file, "(file)", "UTF-8 text", f"a byte at offset {error.start}")]
            ) from None
    if "\x00" in text:
        raise BrandFileError([BrandProblem(file, "(file)", "text", "binary data (a NUL byte)")])
    try:
        data, duplicates = _load_yaml(text, file)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        reason = getattr(error, "problem", None) or "valid YAML"
        raise BrandFileError([BrandProblem(file, where, "valid YAML", str(reason))]) from None
    if not isinstance(data, dict):
        found = "an empty file" if data is None else describe(data)
        raise BrandFileError([BrandProblem(file, "(file)", "a mapping of brand settings", found)])
    problems = [*duplicates, *_validation_problems(file, data, stem)]
    if problems:
        raise BrandFileError(problems)
    return Brand.model_validate(data)


def _validation_problems(file: str, data: dict[str, Any], stem: str | None) -> list[BrandProblem]:
    """Every problem of a brand file's data at once: fields, file name, each environment merged."""
    problems: list[BrandProblem] = []
    try:
        Brand.model_validate(data)
    except ValidationError as error:
        problems.extend(problems_from_validation(file, error))
    name = data.get("name")
    # An invalid name is already reported; "rename one" would only add noise to it.
    if stem is not None and isinstance(name, str) and name != stem and is_brand_name(name):
        problems.append(
            BrandProblem(file, "name", f"the file's stem {stem!r} (rename one)", repr(name))
        )
    base = {key: value for key, value in data.items() if key != "overrides"}
    overrides = data.get("overrides")
    for key, override in overrides.items() if isinstance(overrides, Mapping) else []:
        if key not in {e.value for e in Environment} or not isinstance(override, Mapping):
            continue  # already reported by the model above
        # Merged from the raw data, so an override is checked even when the base has problems;
        # a problem the base already has is not repeated under the override.
        patch = {
            k: v
            for k, v in override.items()
            if k in Overrides.model_fields and isinstance(v, Mapping)
        }
        try:
            Brand.model_validate(deep_merge(base, patch))
        except ValidationError as error:
            for problem in problems_from_validation(file, error):
                if problem in problems:
                    continue
                problems.append(
                    BrandProblem(
                        file, f"overrides.{key}.{problem.field}", problem.expected, problem.found
                    )
                )
    return problems


def _load_yaml(text: str, file: str) -> tuple[Any, list[BrandProblem]]:
    """The data of a YAML document, and a problem for each key given twice in one mapping.

    PyYAML keeps the last of two equal keys without a word, so a second ``serving:``
    block would silently replace the first.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        duplicates = _duplicate_keys(node, file) if node is not None else []
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return data, duplicates


def _duplicate_keys(root: yaml.Node, file: str) -> list[BrandProblem]:
    problems: list[BrandProblem] = []
    seen_nodes: set[int] = set()
    pending: list[tuple[yaml.Node, tuple[str, ...]]] = [(root, ())]
    while pending:
        node, path = pending.pop()
        if id(node) in seen_nodes:  # an alias: already checked where it was anchored
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            pending.extend((item, (*path, str(i))) for i, item in enumerate(node.value))
        if not isinstance(node, yaml.MappingNode):
            continue
        first_lines: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key_path = (*path, str(key_node.value))
            pending.append((value_node, key_path))
            identity = (key_node.tag, key_node.value)
            line = key_node.start_mark.line + 1
            if identity not in first_lines:
                first_lines[identity] = line
                continue
            problems.append(
                BrandProblem(
                    file,
                    ".".join(key_path),
                    f"each key once (first at line {first_lines[identity]}; merge the two)",
                    f"{key_node.value!r} again",
                    line=line,
                )
            )
    return sorted(problems, key=lambda problem: problem.line or 0)


def load_brand(path: Path | str) -> Brand:
    """Read and validate ``brands/<name>.yaml``; the name must equal the file's stem."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BRAND_FILE_BYTES:
            raise BrandFileError(
                [
                    BrandProblem(
                        str(path), "(file)", f"at most {MAX_BRAND_FILE_BYTES} bytes", str(size)
                    )
                ]
            )
        raw = path.read_bytes()
    except OSError as error:
        raise BrandFileError(
            [BrandProblem(str(path), "(file)", "a readable file", error.strerror or str(error))]
        ) from None
    return parse_brand(raw, str(path), stem=path.stem)


def brand_files(directory: Path | str) -> list[Path]:
    """The brand files of a directory, sorted: every ``*.yaml`` and ``*.yml``."""
    directory = Path(directory)
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def load_brand_files(paths: Iterable[Path | str]) -> list[Brand]:
    """Load several brand files, collecting every problem, including names used twice."""
    brands: list[Brand] = []
    problems: list[BrandProblem] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            brand = load_brand(path)
        except BrandFileError as error:
            problems.extend(error.problems)
            continue
        if brand.name in seen:
            problems.append(
                BrandProblem(
                    str(path),
                    "name",
                    f"a name no other brand uses (see {seen[brand.name]})",
                    repr(brand.name),
                )
            )
            continue
        seen[brand.name] = str(path)
        brands.append(brand)
    if problems:
        raise BrandFileError(problems)
    return brands


def load_brands(directory: Path | str) -> list[Brand]:
    """Every brand of a brands directory, validated together."""
    return load_brand_files(brand_files(directory))
