"""The constrained types of the brand file, each defined once for every part that needs it.

The brand name (``BrandName``) is also what the ranking service accepts as
``RECPLAT_BRAND``. Kubernetes quantities (``cpu``, ``memory``) are parsed as Kubernetes
parses them and stored in the one canonical form the infra code reads; the training
schedule is parsed by cronsim; owner (pydantic's ``EmailStr``) and cost center refuse
the placeholders people copy from examples, because they become every tag and label.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BeforeValidator,
    EmailStr,
    StringConstraints,
    WithJsonSchema,
)

BRAND_NAME_PATTERN = r"^(?!.*--)[a-z][a-z0-9-]{1,22}[a-z0-9]$"
"""A lowercase DNS label of 3 to 24 characters: it becomes namespaces, containers and identities.
A doubled dash is refused: Azure storage accounts and Key Vaults derived from it refuse one."""

NAME_HINT = (
    "a lowercase DNS label of 3-24 characters (a-z, 0-9, single '-'), starting with a letter"
)

BrandName = Annotated[str, StringConstraints(pattern=BRAND_NAME_PATTERN)]
"""A brand's name. Models using it need ``regex_engine="python-re"`` (the look-ahead)."""


def is_brand_name(name: str) -> bool:
    """Whether ``name`` is a valid brand name (``BRAND_NAME_PATTERN``)."""
    return re.fullmatch(BRAND_NAME_PATTERN, name) is not None


# Kubernetes CronJobs and the staleness alert (infra.brand_alerts) read numeric fields
# only; cronsim alone would also take names (MON), L, W and # and a sixth field.
_CRON_DIALECT = re.compile(r"[0-9*,/-]+(?: [0-9*,/-]+){4}")
CRON_HINT = "a 5-field cron expression such as '0 3 * * *'"


def cron_schedule(schedule: str) -> str:
    """A 5-field numeric cron schedule that runs at least once; cronsim checks its ranges."""
    if not _CRON_DIALECT.fullmatch(schedule):
        raise ValueError(CRON_HINT + " (numbers, '*', ',', '-' and '/' only)")
    try:
        CronSim(schedule, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as error:
        # cronsim says which field: "Bad day-of-month" (February 30th counts as one).
        reason = str(error).rstrip(".").lower()
        raise ValueError(f"{CRON_HINT} ({reason})") from None
    return schedule


CronSchedule = Annotated[
    str,
    AfterValidator(cron_schedule),
    WithJsonSchema({"type": "string", "pattern": f"^{_CRON_DIALECT.pattern}$"}),
]

QUANTITY_PATTERN = (
    r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
)
"""The Kubernetes quantity grammar (apimachinery ``resource.ParseQuantity``)."""

_QUANTITY_SCALE = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)|[eE](?P<exponent>[+-]?[0-9]+))?"
)
MAX_POD_CPU_CORES = 256
"""Far above any node a brand pod lands on: a larger request is a typo (``1000`` for ``1000m``)."""
MAX_POD_MEMORY_MI = 4 * 1024 * 1024
"""4Ti: far above any node a brand pod lands on."""
_MI = Decimal(2) ** 20
CPU_HINT = "a Kubernetes CPU quantity such as 500m or 2"
MEMORY_HINT = "a Kubernetes memory quantity such as 512Mi or 2Gi"


def _quantity(value: Any) -> tuple[Decimal, bool] | None:
    """A Kubernetes quantity's value, and whether it was a bare number; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value), True
    if isinstance(value, float):
        return (Decimal(repr(value)), True) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    match = _QUANTITY.fullmatch(value)
    if match is None:
        return None
    number = Decimal(match["number"])
    if match["exponent"] is not None:
        exponent = int(match["exponent"])
        # Anything this far out is refused by the range checks; keep Decimal in range.
        exponent = max(-40, min(40, exponent))
        return number.scaleb(exponent), False
    suffix = match["suffix"] or ""
    return number * _QUANTITY_SCALE[suffix], not suffix


def cpu_quantity(value: Any) -> str:
    """A CPU quantity as the infra code consumes it: whole millicores, e.g. ``1`` -> ``1000m``.

    Like Kubernetes, a sub-millicore remainder is rounded up to the next millicore.
    """
    parsed = _quantity(value)
    if parsed is None:
        raise ValueError(CPU_HINT)
    cores, bare = parsed
    if isinstance(value, str) and value.endswith("i"):
        raise ValueError(CPU_HINT)  # a memory unit: cpu and memory swapped, or a typo
    if cores <= 0:
        raise ValueError("a CPU quantity above 0, such as 500m")
    if cores > MAX_POD_CPU_CORES:
        hint = f" (a bare number counts cores; did you mean '{value}m'?)" if bare else ""
        raise ValueError(f"at most {MAX_POD_CPU_CORES} CPU cores per pod{hint}")
    return f"{math.ceil(cores * 1000)}m"


def memory_quantity(value: Any) -> str:
    """A memory quantity as the infra code consumes it: whole MiB, as ``<n>Gi`` or ``<n>Mi``.

    A value in bytes or decimal units (``1G``) is rounded up to the next MiB, so the
    request and limit are never below what the brand asked for.
    """
    parsed = _quantity(value)
    if parsed is None:
        raise ValueError(MEMORY_HINT)
    size, bare = parsed
    if size < _MI:
        hint = (
            f" (a bare number counts bytes; did you mean '{value}Mi'?)" if bare and size > 0 else ""
        )
        raise ValueError(f"at least 1Mi of memory{hint}")
    if size > MAX_POD_MEMORY_MI * _MI:
        raise ValueError(f"at most {MAX_POD_MEMORY_MI // (1024 * 1024)}Ti of memory per pod")
    mebibytes = math.ceil(size / _MI)
    return f"{mebibytes // 1024}Gi" if mebibytes % 1024 == 0 else f"{mebibytes}Mi"


# The schema tells editors what the validator accepts: a quantity string or a bare number.
_QUANTITY_JSON_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": QUANTITY_PATTERN},
        {"type": "number", "exclusiveMinimum": 0},
    ]
}

CpuQuantity = Annotated[str, BeforeValidator(cpu_quantity), WithJsonSchema(_QUANTITY_JSON_SCHEMA)]
MemoryQuantity = Annotated[
    str, BeforeValidator(memory_quantity), WithJsonSchema(_QUANTITY_JSON_SCHEMA)
]

# Domains reserved for documentation and testing (RFC 2606, RFC 6761): mail to them goes nowhere.
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")
_RESERVED_TLDS = ("example", "test", "invalid", "localhost", "local")
_PLACEHOLDER_COST_CENTER = re.compile(
    r"(?:[a-z]+[-_]?)?0+|(?:[a-z]+[-_])?x{2,}|x{3,}"
    r"|(?:[a-z]+[-_])?(?:tbd|todo|tba|none|na|n-a|changeme|change-me|placeholder|example|dummy)",
    re.IGNORECASE,
)


def _not_a_placeholder_owner(owner: Any) -> Any:
    # Before EmailStr, which refuses some of these domains with a reason that names no fix.
    if not isinstance(owner, str):
        return owner
    domain = owner.rsplit("@", 1)[-1]
    lowered = domain.lower()
    if lowered.rsplit(".", 1)[-1] in _RESERVED_TLDS or any(
        lowered == d or lowered.endswith(f".{d}") for d in _RESERVED_DOMAINS
    ):
        raise ValueError(
            f"the owning team's real email address ({domain} is reserved for examples "
            "and receives no mail)"
        )
    return owner


def is_placeholder_cost_center(cost_center: str) -> bool:
    """Whether a cost center is a stand-in (``CC-0000``, ``XXX``, ``TBD``), not a real one."""
    return _PLACEHOLDER_COST_CENTER.fullmatch(cost_center) is not None


def _not_a_placeholder_cost_center(cost_center: str) -> str:
    if is_placeholder_cost_center(cost_center):
        raise ValueError(
            "the cost center your finance team assigned to the brand (not a placeholder)"
        )
    return cost_center


OwnerEmail = Annotated[EmailStr, BeforeValidator(_not_a_placeholder_owner)]
CostCenter = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"),
    AfterValidator(_not_a_placeholder_cost_center),
]
