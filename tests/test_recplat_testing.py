"""The test support in `recplat.testing` can fail: a checker that checked nothing, a wait that
timed out and a metric that is absent must never read as a pass."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from recplat.testing.checkov import CheckovError, parse_checkov_output, run_checkov
from recplat.testing.servers import wait_until
from recplat.testing.service_process import metric_sample

PRIVILEGED_POD = """\
apiVersion: v1
kind: Pod
metadata: {name: privileged, namespace: default}
spec:
  containers:
    - name: app
      image: nginx:1.27
      securityContext: {privileged: true}
"""


def _report(passed: int, failed: list[str], resources: int = 1) -> dict[str, object]:
    return {
        "check_type": "kubernetes",
        "results": {
            "failed_checks": [
                {"check_id": c, "check_name": "a check", "resource": "Pod.default.p",
                 "file_path": "/pod.yaml"}
                for c in failed
            ]
        },
        "summary": {"passed": passed, "failed": len(failed), "parsing_errors": 0,
                    "resource_count": resources},
    }  # fmt: skip


@pytest.mark.fast
@pytest.mark.parametrize(
    ("stdout", "message"),
    [
        ("", "checkov printed nothing"),
        ("   \n", "checkov printed nothing"),
        ("Traceback (most recent call last):", "checkov's output is not JSON"),
        # What checkov prints for a folder with no file of the framework.
        (json.dumps({"passed": 0, "failed": 0, "resource_count": 0}), "found nothing to check"),
        ("[]", "found nothing to check"),
        (json.dumps(_report(0, [], resources=0)), "ran no check on any resource"),
        (json.dumps({**_report(3, []), "summary": {"passed": 3, "parsing_errors": 2,
                                                   "resource_count": 1}}),
         "could not parse 2 file(s)"),
    ],
    ids=["empty", "blank", "not-json", "bare-summary", "empty-list", "no-resource",
         "parsing-errors"],
)  # fmt: skip
def test_checkov_output_that_shows_nothing_was_checked_is_an_error(
    stdout: str, message: str
) -> None:
    with pytest.raises(CheckovError, match=re.escape(message)):
        parse_checkov_output(stdout, "stderr")


@pytest.mark.fast
def test_checkov_reports_of_several_frameworks_are_summed_with_each_failure_named() -> None:
    output = json.dumps([_report(10, ["CKV_K8S_16"]), _report(5, [], resources=2)])
    report = parse_checkov_output(output)
    assert (report.passed, report.resources) == (15, 3)
    assert report.failed == ["CKV_K8S_16 a check: Pod.default.p in pod.yaml"]


def test_real_checkov_fails_a_privileged_pod_and_refuses_an_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "pod.yaml").write_text(PRIVILEGED_POD)
    report = run_checkov("kubernetes", directory=tmp_path / "bad")
    assert any(line.startswith("CKV_K8S_16 ") for line in report.failed), report.failed
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckovError, match="found nothing to check"):
        run_checkov("kubernetes", directory=tmp_path / "empty")


@pytest.mark.fast
def test_wait_until_fails_naming_what_did_not_happen_after_its_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^the moon turning blue did not happen within 0 s$"):
        wait_until(lambda: False, 0.3, "the moon turning blue")
    assert 0.3 <= time.monotonic() - started < 2


@pytest.mark.fast
def test_metric_sample_sums_the_samples_with_the_labels_and_is_0_when_absent() -> None:
    exposition = (
        "# TYPE recplat_rank_requests_total counter\n"
        'recplat_rank_requests_total{brand="a",variant="champion",outcome="ok"} 3.0\n'
        'recplat_rank_requests_total{brand="a",variant="challenger",outcome="ok"} 2.0\n'
        'recplat_rank_requests_total{brand="a",variant="none",outcome="invalid"} 1.0\n'
        'recplat_rank_requests_total_created{brand="a",variant="none",outcome="ok"} 9.0\n'
    )
    assert metric_sample(exposition, "recplat_rank_requests_total", outcome="ok") == 5.0
    assert metric_sample(exposition, "recplat_rank_requests_total") == 6.0
    assert metric_sample(exposition, "recplat_rank_requests_total", outcome="error") == 0.0
    assert metric_sample(exposition, "recplat_fallback_total") == 0.0
