"""The README's rule table, rendered from the catalog and the shipped stack configs.

``python -m policies.readme_table`` prints it; a test keeps policies/README.md equal
to it, so the documented severities and per-stack levels are the ones that run.
"""

from __future__ import annotations

from policies.catalog import ALL_POLICIES
from policies.pack_config import config_for_stack, enforcement_for

STACKS = ("dev", "prod")


def render_table() -> str:
    """One Markdown row per policy: id, what it checks, severity, level per stack, benchmark."""
    configs = {stack: config_for_stack(stack) for stack in STACKS}
    header = ["rule id", "what it checks", "severity", *STACKS, "benchmark"]
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for policy in ALL_POLICIES:
        levels = [enforcement_for(policy, configs[stack]).value for stack in STACKS]
        severity = policy.severity.value if policy.severity else ""
        benchmark = getattr(policy, "benchmark", None) or "-"
        cells = [f"`{policy.name}`", policy.description, severity, *levels, benchmark]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(render_table())
