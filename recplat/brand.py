"""The brand file: one pydantic model is the single source of truth for ``brands/<name>.yaml``.

Everything else derives from it: the JSON Schema editors use, the validator
behind ``recplat brands validate``, and the inputs of every ``BrandStack``.
Loading never raises anything but ``BrandFileError``, whose problems read
``<file>: <field.path>: <what was expected>, got <what was found>``.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self, Union, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from recplat.brand_fields import CostCenter, CpuQuantity, MemoryQuantity, OwnerEmail

BRAND_NAME_PATTERN = r"^(?!.*--)[a-z][a-z0-9-]{1,22}[a-z0-9]$"
"""A lowercase DNS label of 3 to 24 characters: it becomes namespaces, containers and identities."""

NAME_HINT = (
    "a lowercase DNS label of 3-24 characters (a-z, 0-9, single '-'), starting with a letter"
)

MAX_BRAND_FILE_BYTES = 256 * 1024
"""A brand file is a page of YAML; anything larger is a mistake, not a brand."""

SCHEMA_FILE_NAME = "brand.schema.json"

_CRON_FIELD = r"(?:\*|[0-9]+(?:-[0-9]+)?)(?:/[0-9]+)?(?:,(?:\*|[0-9]+(?:-[0-9]+)?)(?:/[0-9]+)?)*"
_CRON_PATTERN = rf"^{_CRON_FIELD}(?: {_CRON_FIELD}){{4}}$"

BrandName = Annotated[str, StringConstraints(pattern=BRAND_NAME_PATTERN)]


class Environment(StrEnum):
    """The stacks a brand can be stamped into."""

    DEV = "dev"
    PROD = "prod"


class PromotionMetric(StrEnum):
    """Offline metrics the promotion gate can compare on."""

    NDCG_AT_5 = "ndcg@5"
    NDCG_AT_10 = "ndcg@10"
    MAP_AT_10 = "map@10"
    MRR = "mrr"


class _Strict(BaseModel):
    # python-re: the brand name pattern needs a look-ahead (no doubled dash).
    model_config = ConfigDict(
        extra="forbid", frozen=True, use_enum_values=False, regex_engine="python-re"
    )


class Replicas(_Strict):
    """How far the service's HorizontalPodAutoscaler may scale."""

    min: int = Field(2, ge=1, le=100, description="Replicas kept running at all times.")
    max: int = Field(6, ge=1, le=200, description="Upper bound for the autoscaler.")

    @model_validator(mode="after")
    def _max_not_below_min(self) -> Self:
        if self.max < self.min:
            raise ValueError(f"max: must be >= min ({self.min})")
        return self


class Serving(_Strict):
    """The real-time ranking service: sized for stability."""

    replicas: Replicas = Field(default_factory=lambda: Replicas())
    cpu: CpuQuantity = Field("500m", description="CPU request per pod, a Kubernetes quantity.")
    memory: MemoryQuantity = Field("512Mi", description="Memory request and limit per pod.")
    latency_slo_ms: int = Field(50, ge=5, le=5000, description="p99 latency objective of /rank.")
    max_candidates: int = Field(200, ge=1, le=2000, description="Most candidates per request.")
    challenger_traffic: float = Field(
        0.1, ge=0.0, le=0.5, description="Share of users served by the challenger model."
    )
    exploration: float = Field(
        0.05,
        ge=0.0,
        le=0.2,
        description=(
            "Share of requests whose top k is a uniformly random permutation of the model's top"
            " 2k, logged with propensities: the data the counterfactual gate judges on."
        ),
    )
    default_k: int = Field(
        20, ge=1, le=2000, description="Items returned (and logged) when a request gives no k."
    )


class LightGBMParams(_Strict):
    """LambdaRank hyper-parameters; the training job passes them to LightGBM unchanged."""

    num_leaves: int = Field(31, ge=2, le=1024)
    learning_rate: float = Field(0.05, gt=0.0, le=1.0)
    num_boost_round: int = Field(300, ge=1, le=10000)
    min_data_in_leaf: int = Field(20, ge=1, le=100000)
    feature_fraction: float = Field(0.9, gt=0.0, le=1.0)
    early_stopping_rounds: int = Field(30, ge=1, le=1000)


class Promotion(_Strict):
    """The gate a challenger must pass to become champion."""

    metric: PromotionMetric = PromotionMetric.NDCG_AT_10
    min_gain: float = Field(
        0.005, ge=0.0, le=1.0, description="Absolute gain over the champion required."
    )
    conversion_weight: float = Field(
        0.0,
        ge=0.0,
        le=100.0,
        description="The online objective per request: clicks + conversion_weight x conversions.",
    )
    margin: float = Field(
        0.01,
        ge=0.0,
        le=0.5,
        description=(
            "How much worse than the champion (a share of its estimated objective) the interval"
            " may allow for a retrain to become challenger."
        ),
    )
    min_exploration_requests: int = Field(
        300, ge=1, le=10_000_000, description="Exploration requests the gate needs to judge."
    )
    max_experiment_days: float = Field(
        14,
        gt=0,
        le=90,
        description=(
            "Longest an online experiment may run before it stops, in days (fractions allowed: "
            "0.25 is six hours)."
        ),
    )


class Training(_Strict):
    """The batch training job: built for flexibility."""

    schedule: Annotated[str, StringConstraints(pattern=_CRON_PATTERN)] = Field(
        "0 3 * * *", description="Cron schedule of the training CronJob (UTC)."
    )
    lookback_days: int = Field(28, ge=1, le=365)
    label_delay_hours: int = Field(
        6,
        ge=0,
        le=168,
        description="Events newer than this are left out: their clicks may not have arrived.",
    )
    lightgbm: LightGBMParams = Field(default_factory=lambda: LightGBMParams())
    promotion: Promotion = Field(default_factory=lambda: Promotion())
    workers: int = Field(0, ge=0, le=64, description="0 trains in the job's pod; N on Dask.")
    cpu: CpuQuantity = Field("1000m", description="CPU request per pod, a Kubernetes quantity.")
    memory: MemoryQuantity = Field("2Gi", description="Memory request and limit per pod.")

    @field_validator("schedule")
    @classmethod
    def _cron_fields_in_range(cls, schedule: str) -> str:
        limits = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
        names = ["minute", "hour", "day of month", "month", "day of week"]
        for field_text, (low, high), field_name in zip(
            schedule.split(), limits, names, strict=True
        ):
            for number in map(int, re.findall(r"[0-9]+", field_text.split("/")[0])):
                if not low <= number <= high:
                    raise ValueError(f"a cron {field_name} between {low} and {high}")
        return schedule


DRIFT_NOISE_MARGIN = 5.0
"""How far above the PSI of sampling noise alone the drift threshold must be (``Monitoring``)."""


class Monitoring(_Strict):
    """Feature drift: what the service samples, and when the drift alert fires.

    The service logs ``feature_sample`` of the items it returns with their feature vectors;
    the hourly drift job compares the last ``drift_window_hours`` of them with the champion's
    training distribution, feature by feature (population stability index, docs/architecture.md
    "Feature drift"), and the brand's alert fires when one passes ``drift_psi_threshold``.
    """

    feature_sample: float = Field(
        0.01,
        ge=0.0,
        le=1.0,
        description=(
            "Share of the items /rank returns whose feature vector the service logs "
            "(events/features) for the drift job; 0 turns drift monitoring off."
        ),
    )
    drift_psi_threshold: float = Field(
        0.2,
        gt=0.0,
        le=10.0,
        description=(
            "A feature's population stability index against the champion's training "
            "distribution above this fires RecplatFeatureDrift."
        ),
    )
    drift_window_hours: int = Field(
        24, ge=1, le=168, description="Hours of sampled rows each drift job run compares."
    )
    drift_min_rows: int = Field(
        1000,
        ge=100,
        le=10_000_000,
        description="Fewest sampled rows a drift verdict needs; with fewer, none is given.",
    )

    @model_validator(mode="after")
    def _threshold_above_sampling_noise(self) -> Self:
        from ranking_features.drift import DEFAULT_BINS

        # Without drift, PSI over B bins is about (B - 1) / n for n sampled rows
        # (ranking_features.drift); a threshold near that would fire on noise alone.
        noise = (DEFAULT_BINS - 1) / self.drift_min_rows
        if self.drift_psi_threshold < DRIFT_NOISE_MARGIN * noise:
            raise ValueError(
                f"drift_psi_threshold: at least {DRIFT_NOISE_MARGIN * noise:.3f} "
                f"({DRIFT_NOISE_MARGIN:g} x the PSI that sampling noise alone gives at "
                f"drift_min_rows {self.drift_min_rows}); raise it, or raise drift_min_rows"
            )
        return self


def ranking_drift_flags(monitoring: Monitoring) -> list[str]:
    """The ``ranking-experiments drift`` flags the brand file decides, for the AKS CronJob
    (infra/brand_training.py) and the local platform (recplat/local/workloads.py) alike."""
    return [
        "--psi-threshold", str(monitoring.drift_psi_threshold),
        "--window-hours", str(monitoring.drift_window_hours),
        "--min-rows", str(monitoring.drift_min_rows),
    ]  # fmt: skip


def ranking_train_flags(training: Training) -> list[str]:
    """The ``ranking-train`` flags the brand file decides: window, label delay, gate, LightGBM.

    ``ranking-train`` takes its settings as flags only; the AKS CronJob
    (infra/brand_training.py) and the local platform (recplat/local/workloads.py) both start
    from this list, so neither can train with the job's defaults. How the job runs (workers,
    threads, Dask scheduler, window end) is theirs to add. Pass the brand merged for its
    environment, so overrides apply.
    """
    promotion = training.promotion
    flags = [
        "--lookback-days", str(training.lookback_days),
        "--label-delay-hours", str(training.label_delay_hours),
        "--promotion-metric", promotion.metric.value,
        "--min-gain", str(promotion.min_gain),
        "--conversion-weight", str(promotion.conversion_weight),
        "--margin", str(promotion.margin),
        "--min-exploration-requests", str(promotion.min_exploration_requests),
    ]  # fmt: skip
    for name, value in training.lightgbm.model_dump().items():
        flags += ["--" + name.replace("_", "-"), str(value)]
    return flags


class BrandSettings(_Strict):
    """What a brand file holds, without the per-environment overrides."""

    name: BrandName = Field(description="Lowercase DNS label, 3-24 characters; the file's stem.")
    # No control characters: YAML folds some (NEL, U+0085) into spaces, and tags refuse them.
    display_name: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f-\x9f]*$")
    ]
    owner: OwnerEmail
    cost_center: CostCenter
    environments: list[Environment] = Field(min_length=1)
    serving: Serving = Field(default_factory=lambda: Serving())
    training: Training = Field(default_factory=lambda: Training())
    monitoring: Monitoring = Field(default_factory=lambda: Monitoring())

    @field_validator("environments")
    @classmethod
    def _environments_unique(cls, environments: list[Environment]) -> list[Environment]:
        if len(set(environments)) != len(environments):
            raise ValueError("each environment listed once")
        return environments


class Overrides(_Strict):
    """Partial settings that replace the base ones in one environment only."""

    serving: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    monitoring: dict[str, Any] | None = None


class Brand(BrandSettings):
    """A brand file: base settings plus per-environment overrides."""

    overrides: dict[Environment, Overrides] = Field(default_factory=dict)

    def for_environment(self, environment: Environment | str) -> Brand:
        """The brand as it is deployed into ``environment``: overrides merged, validated again."""
        env = Environment(environment)
        data = self.model_dump(mode="json", exclude={"overrides"})
        override = self.overrides.get(env)
        if override is not None:
            data = _deep_merge(data, override.model_dump(mode="json", exclude_none=True))
        return Brand.model_validate(data)


def _deep_merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


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


def _describe(value: Any) -> str:
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
    "schedule": "a 5-field cron expression such as '0 3 * * *'",
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


def _problems_from_validation(file: str, error: ValidationError) -> list[BrandProblem]:
    problems = []
    for item in error.errors():
        location = [str(part) for part in item["loc"]]
        expected = _expectation(item)
        if item["type"] == "extra_forbidden":
            expected = _unknown_key_expectation(location)
        # A model validator reports on the model; it names the field in its message.
        found_value = item.get("input")
        if item["type"] == "value_error" and ": " in expected:
            field_name, expected = expected.split(": ", 1)
            location.append(field_name)
            if isinstance(found_value, Mapping):
                # Not in the file: the model's default was checked.
                found_value = found_value.get(field_name, _DEFAULT)
        found = "nothing" if item["type"] == "missing" else _describe(found_value)
        if item["type"] == "extra_forbidden":
            found = repr(location[-1])
        problems.append(BrandProblem(file, ".".join(location) or "(file)", expected, found))
    return problems


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
        found = "an empty file" if data is None else _describe(data)
        raise BrandFileError([BrandProblem(file, "(file)", "a mapping of brand settings", found)])
    problems = [*duplicates, *_validation_problems(file, data, stem)]
    if problems:
        raise BrandFileError(problems)
    return Brand.model_validate(data)


def _is_brand_name(name: str) -> bool:
    return re.fullmatch(BRAND_NAME_PATTERN, name) is not None


def _validation_problems(file: str, data: dict[str, Any], stem: str | None) -> list[BrandProblem]:
    """Every problem of a brand file's data at once: fields, file name, each environment merged."""
    problems: list[BrandProblem] = []
    try:
        Brand.model_validate(data)
    except ValidationError as error:
        problems.extend(_problems_from_validation(file, error))
    name = data.get("name")
    # An invalid name is already reported; "rename one" would only add noise to it.
    if stem is not None and isinstance(name, str) and name != stem and _is_brand_name(name):
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
            Brand.model_validate(_deep_merge(base, patch))
        except ValidationError as error:
            for problem in _problems_from_validation(file, error):
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


def brands_for_environment(brands: Iterable[Brand], environment: Environment | str) -> list[Brand]:
    """The brands stamped into one stack, each with that environment's overrides applied."""
    env = Environment(environment)
    return [brand.for_environment(env) for brand in brands if env in brand.environments]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a brand file, generated from the model."""
    schema = Brand.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://recplat.dev/schemas/brand.schema.json"
    schema["title"] = "recplat brand file"
    return schema
