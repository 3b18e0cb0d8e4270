"""What a dashboard asks Prometheus: every panel's PromQL, as Grafana would send it.

Read from the dashboard JSON that is provisioned (not from the builders), so a test of
these queries tests what Grafana shows. ``resolved`` substitutes the dashboard's constant
variables (``$brand``) and Grafana's ``$__rate_interval``, the way Grafana does before it
queries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ranking_features import metric_names

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")
_METRIC = re.compile(r"\brecplat_[a-z0-9_]+\b")
_SERIES_FAMILY = {series: metric for metric in metric_names.ALL for series in metric.series_names}


@dataclass(frozen=True)
class PanelQuery:
    """One target of one panel."""

    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool

    def resolved(self, variables: Mapping[str, str], rate_interval: str) -> str:
        """The expression with ``$name``/``${name}`` and ``$__rate_interval`` substituted."""
        values = {**variables, "__rate_interval": rate_interval}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1) or match.group(2)
            if name not in values:
                raise KeyError(f"{self.dashboard} / {self.panel}: unknown variable ${name}")
            return values[name]

        return _VARIABLE.sub(substitute, self.expr)

    @property
    def metrics(self) -> frozenset[str]:
        """The recplat series names the expression reads."""
        return frozenset(_METRIC.findall(self.expr))

    @property
    def expects_data(self) -> bool:
        """False when it reads a metric declared but not exported yet (its panel waits for it)."""
        return all(
            family is None or family.exported
            for family in (_SERIES_FAMILY.get(name) for name in self.metrics)
        )


def _as_model(dashboard: str | Mapping[str, Any]) -> Mapping[str, Any]:
    return json.loads(dashboard) if isinstance(dashboard, str) else dashboard


def constant_variables(dashboard: str | Mapping[str, Any]) -> dict[str, str]:
    """The dashboard's constant variables and their values (``brand`` on a brand dashboard)."""
    model = _as_model(dashboard)
    return {
        variable["name"]: str(variable["query"])
        for variable in model.get("templating", {}).get("list", [])
        if variable.get("type") == "constant"
    }


def panel_queries(dashboard: str | Mapping[str, Any]) -> list[PanelQuery]:
    """Every target of every panel (rows included), in the dashboard's order."""
    model = _as_model(dashboard)
    found = []
    panels = list(model.get("panels", []))
    while panels:
        panel = panels.pop(0)
        panels[0:0] = panel.get("panels") or []
        for target in panel.get("targets") or []:
            found.append(
                PanelQuery(
                    dashboard=model["title"],
                    panel=panel["title"],
                    ref_id=target["refId"],
                    expr=target["expr"],
                    instant=bool(target.get("instant")) and not target.get("range"),
                )
            )
    return found
