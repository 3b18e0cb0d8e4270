"""Optional OpenTelemetry export to Azure Monitor, on only when
`APPLICATIONINSIGHTS_CONNECTION_STRING` is set.

The exporter is not part of the service image by default; if it is missing, the service says
so once and runs on (Prometheus metrics are the primary signal).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from ranking_service.settings import Settings

log = logging.getLogger(__name__)


def configure_telemetry(app: FastAPI, settings: Settings) -> bool:
    """Instrument `app` for Azure Monitor if configured and installed; returns whether it did."""
    secret = settings.applicationinsights_connection_string
    if secret is None or not secret.get_secret_value():
        return False
    try:
        from azure.monitor.opentelemetry import configure_azure_monitor
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    except ImportError:
        log.warning(
            "APPLICATIONINSIGHTS_CONNECTION_STRING is set but azure-monitor-opentelemetry and "
            "opentelemetry-instrumentation-fastapi are not installed: no trace export"
        )
        return False
    configure_azure_monitor(connection_string=secret.get_secret_value())
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")
    log.info("OpenTelemetry export to Azure Monitor on")
    return True
