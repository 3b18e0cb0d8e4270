"""A /rank request that fails after the service chose its arm is that arm's error: counted under
its variant and logged to the lake's `events/errors`, where the online experiment's error-ratio
guardrail reads it (issue 15). The app runs in process with its real event log and shipper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.service.in_process import InProcessService

CANDIDATES = [f"item-{n}" for n in range(8)]


def test_a_rank_request_failing_after_its_arm_was_chosen_is_that_arms_logged_error(
    tmp_path: Path,
) -> None:
    with InProcessService(tmp_path, brand="ip-errors") as app:
        state = app.client.app.state.service  # type: ignore[attr-defined]
        working = state.exploration.choose

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("injected: the ranking step failed")

        state.exploration.choose = broken
        # The test client re-raises what the app's 500 handler saw.
        with pytest.raises(RuntimeError, match="injected"):
            app.rank(user_id="u-failed", candidates=CANDIDATES, k=3)
        state.exploration.choose = working
        assert app.rank(user_id="u-answered", candidates=CANDIDATES, k=3).status_code == 200
        # Refused before an arm exists: an error of no arm ("none"), and not in the lake.
        assert app.rank(user_id="", candidates=CANDIDATES).status_code == 422
        errors = app.metric("recplat_rank_requests_total", variant="champion", outcome="error")
        answered = app.metric("recplat_rank_requests_total", variant="fallback", outcome="fallback")
    assert (errors, answered) == (1, 1)
    rows = app.lake_rows("errors")
    assert [(r["user_id"], r["variant"], r["error"], r["brand"]) for r in rows] == [
        ("u-failed", "champion", "RuntimeError", "ip-errors")
    ]
    assert rows[0]["experiment_id"] is None  # no challenger, so no experiment runs
    assert [r["user_id"] for r in app.lake_rows("impressions")] == ["u-answered"] * 3
