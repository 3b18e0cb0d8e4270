"""The dates of the training tests' synthetic lake (`conftest.synthetic`): ten days of traffic
ending on `END`, so `FIRST..END` reads the lake's last `END - FIRST + 1` days."""

from __future__ import annotations

from datetime import date

END = date(2025, 1, 31)
DAYS = 10
FIRST = date(2025, 1, 22)
