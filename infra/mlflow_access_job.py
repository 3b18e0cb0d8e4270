"""The MLflow access job: the admin reserves each brand's MLflow names and grants them.

Run as ``python3 -c <this file's source> URL SECRETS_DIR BRAND [BRAND ...]`` by the Job that
``infra/mlflow_access.py`` plans, from the MLflow server's image, with the standard library
only. ``SECRETS_DIR`` holds ``admin-password`` and, per brand, the password files
``brand-<b>`` (the writer: training and the experiment evaluator) and ``brand-<b>-reader``
(the ranking service).

MLflow's basic-auth gives the *creator* of an experiment or registered model ``MANAGE`` on
it, and any signed-in user may create any name. So a brand that creates ``acme-ranker``
before acme does owns acme's model. This job closes that: before a brand's workloads start,
the admin

1. creates or updates the brand's two users;
2. creates ``recplat/<b>``, ``recplat/<b>/experiments`` and ``<b>-ranker`` itself when they
   do not exist yet, and tags them ``recplat.reserved-for=<b>``;
3. finds every other user's grant on them (``/api/3.0/mlflow/users/permissions/list``),
   revokes it and reports it;
4. grants the writer ``EDIT`` (runs, versions, aliases; never permissions or deletes) and the
   reader ``READ``, and nothing else.

A name that already existed with another user's grant on it is *taken*: after revoking the
grant, the job tags it ``recplat.quarantined`` and exits non-zero, so the brand's workloads
never start against a model somebody else may have written. It stays refused on every later
run until an admin has checked it and removed the tag (or deleted the object). A name the
brand's own users created before this job existed is adopted.

Passwords never reach a log or an argument.
"""

from __future__ import annotations

import base64
import json
import pathlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

RESERVED_TAG = "recplat.reserved-for"
QUARANTINE_TAG = "recplat.quarantined"
ADMIN = "admin"
HEALTH_DEADLINE_S = 300
WRITER_PERMISSION = "EDIT"
READER_PERMISSION = "READ"
_SYNTHETIC_ROLE_PREFIX = "__user_"


class MlflowError(Exception):
    """An MLflow REST call answered with an error the job cannot continue past."""


@dataclass
class BrandAccess:
    """One brand's MLflow names and users, and what reconciling them found."""

    brand: str
    reports: list[str] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)

    @property
    def writer(self) -> str:
        return f"brand-{self.brand}"

    @property
    def reader(self) -> str:
        return f"brand-{self.brand}-reader"

    @property
    def experiments(self) -> tuple[str, str]:
        return (f"recplat/{self.brand}", f"recplat/{self.brand}/experiments")

    @property
    def model(self) -> str:
        return f"{self.brand}-ranker"


class Mlflow:
    """The tracking server's REST API, signed in as the admin."""

    def __init__(self, url: str, admin_password: str) -> None:
        self.url = url.rstrip("/")
        token = base64.b64encode(f"{ADMIN}:{admin_password}".encode()).decode()
        self._auth = f"Basic {token}"

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, **query: str
    ) -> tuple[int, dict[str, Any]]:
        url = self.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(  # noqa: S310 - the in-cluster tracking server
            url,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": self._auth, "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        try:
            payload = json.loads(raw or b"{}")
        except ValueError:
            payload = {}
        return status, payload if isinstance(payload, dict) else {}

    def expect(
        self, method: str, path: str, body: dict[str, Any] | None = None, **query: str
    ) -> dict[str, Any]:
        status, payload = self.call(method, path, body, **query)
        if status != 200:
            detail = payload.get("message") or payload.get("error_code") or ""
            raise MlflowError(f"{method} {path}: HTTP {status} {detail}".strip())
        return payload

    def wait_healthy(self, deadline_s: float = HEALTH_DEADLINE_S) -> None:
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=5):  # noqa: S310
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise MlflowError(
                        f"{self.url}/health did not answer within {deadline_s:.0f} s"
                    ) from None
                time.sleep(5)


def set_user(mlflow: Mlflow, user: str, password: str) -> str:
    """Create ``user`` or set its password; what was done."""
    status, _ = mlflow.call("GET", "/api/2.0/mlflow/users/get", username=user)
    if status == 200:
        mlflow.expect(
            "PATCH", "/api/2.0/mlflow/users/update-password",
            {"username": user, "password": password},
        )  # fmt: skip
        return f"updated {user}"
    if status == 404:
        mlflow.expect(
            "POST", "/api/2.0/mlflow/users/create", {"username": user, "password": password}
        )
        return f"created {user}"
    raise MlflowError(f"looking up user {user}: HTTP {status}")


def _tags(entity: dict[str, Any]) -> dict[str, str]:
    return {tag["key"]: tag.get("value", "") for tag in entity.get("tags", [])}


def reserve_experiment(mlflow: Mlflow, access: BrandAccess, name: str) -> tuple[str, bool, str]:
    """The experiment's id, whether it already existed, and its quarantine reason if any."""
    status, found = mlflow.call(
        "GET", "/api/2.0/mlflow/experiments/get-by-name", experiment_name=name
    )
    if status == 404:
        created = mlflow.expect("POST", "/api/2.0/mlflow/experiments/create", {"name": name})
        experiment_id = str(created["experiment_id"])
        mlflow.expect(
            "POST", "/api/2.0/mlflow/experiments/set-experiment-tag",
            {"experiment_id": experiment_id, "key": RESERVED_TAG, "value": access.brand},
        )  # fmt: skip
        access.reports.append(f"reserved experiment {name} (id {experiment_id})")
        return experiment_id, False, ""
    if status != 200:
        raise MlflowError(f"looking up experiment {name}: HTTP {status}")
    experiment = found["experiment"]
    experiment_id = str(experiment["experiment_id"])
    if experiment.get("lifecycle_stage") == "deleted":
        mlflow.expect(
            "POST", "/api/2.0/mlflow/experiments/restore", {"experiment_id": experiment_id}
        )
        access.reports.append(f"restored deleted experiment {name} (id {experiment_id})")
    return experiment_id, True, _tags(experiment).get(QUARANTINE_TAG, "")


def reserve_model(mlflow: Mlflow, access: BrandAccess) -> tuple[bool, str]:
    """Whether the registered model already existed, and its quarantine reason if any."""
    name = access.model
    status, found = mlflow.call("GET", "/api/2.0/mlflow/registered-models/get", name=name)
    if status == 404:
        mlflow.expect("POST", "/api/2.0/mlflow/registered-models/create", {"name": name})
        mlflow.expect(
            "POST", "/api/2.0/mlflow/registered-models/set-tag",
            {"name": name, "key": RESERVED_TAG, "value": access.brand},
        )  # fmt: skip
        access.reports.append(f"reserved registered model {name}")
        return False, ""
    if status != 200:
        raise MlflowError(f"looking up registered model {name}: HTTP {status}")
    return True, _tags(found["registered_model"]).get(QUARANTINE_TAG, "")


def grants_of(mlflow: Mlflow, user: str) -> list[dict[str, Any]]:
    listed = mlflow.expect("GET", "/api/3.0/mlflow/users/permissions/list", username=user)
    return list(listed.get("permissions", []))


def _grant(mlflow: Mlflow, user: str, kind: str, resource: str, permission: str) -> None:
    mlflow.expect(
        "POST", "/api/3.0/mlflow/users/permissions/grant",
        {"username": user, "resource_type": kind, "resource_id": resource,
         "permission": permission},
    )  # fmt: skip


def _revoke(mlflow: Mlflow, user: str, kind: str, resource: str) -> None:
    mlflow.expect(
        "POST", "/api/3.0/mlflow/users/permissions/revoke",
        {"username": user, "resource_type": kind, "resource_id": resource},
    )  # fmt: skip


def reconcile_brand(mlflow: Mlflow, access: BrandAccess, users: list[dict[str, Any]]) -> None:
    """Reserve the brand's names, strip foreign grants, grant the brand exactly its own."""
    experiment_ids: dict[str, str] = {}
    existed: dict[tuple[str, str], bool] = {}
    quarantined: dict[tuple[str, str], str] = {}
    for name in access.experiments:
        experiment_id, was_there, reason = reserve_experiment(mlflow, access, name)
        experiment_ids[name] = experiment_id
        existed[("experiment", experiment_id)] = was_there
        quarantined[("experiment", experiment_id)] = reason
    was_there, reason = reserve_model(mlflow, access)
    existed[("registered_model", access.model)] = was_there
    quarantined[("registered_model", access.model)] = reason
    label = {("experiment", i): f"experiment {n}" for n, i in experiment_ids.items()}
    label[("registered_model", access.model)] = f"registered model {access.model}"

    own = {access.writer, access.reader}
    foreign: dict[tuple[str, str], list[str]] = {key: [] for key in label}
    for user in users:
        username = str(user["username"])
        if username in own or user.get("is_admin"):
            continue
        for row in grants_of(mlflow, username):
            key = (str(row.get("resource_type")), str(row.get("resource_pattern")))
            if key not in label:
                continue
            role = str(row.get("role_name", ""))
            held = f"{username}'s {row.get('permission')}"
            if role.startswith(_SYNTHETIC_ROLE_PREFIX):
                _revoke(mlflow, username, *key)
                access.reports.append(f"revoked {held} on {label[key]}")
            else:
                held += f" (through role {role}; remove the user from that role)"
            foreign[key].append(held)

    for key, holders in foreign.items():
        if holders and existed[key]:
            reason = "existed before recplat reserved it, with " + ", ".join(holders)
            _quarantine(mlflow, key, reason)
            quarantined[key] = reason
        if quarantined[key]:
            access.refusals.append(
                f"{label[key]} is taken: {quarantined[key]}. Check its runs, versions and "
                f"aliases; delete it if it is not {access.brand}'s, or remove its "
                f"{QUARANTINE_TAG!r} tag once it is clean; then run this job again"
            )

    wanted: dict[str, dict[tuple[str, str], str]] = {access.writer: {}, access.reader: {}}
    for key in label:
        wanted[access.writer][key] = WRITER_PERMISSION
    wanted[access.reader][("experiment", experiment_ids[access.experiments[0]])] = READER_PERMISSION
    wanted[access.reader][("registered_model", access.model)] = READER_PERMISSION
    for grantee, permissions in wanted.items():
        current = {
            (str(row.get("resource_type")), str(row.get("resource_pattern"))): str(
                row.get("permission")
            )
            for row in grants_of(mlflow, grantee)
            if str(row.get("role_name", "")).startswith(_SYNTHETIC_ROLE_PREFIX)
        }
        for key, permission in sorted(current.items()):
            if key in label and permissions.get(key) != permission:
                _revoke(mlflow, grantee, *key)
        for key, permission in sorted(permissions.items()):
            if current.get(key) != permission:
                _grant(mlflow, grantee, *key, permission)
                access.reports.append(f"granted {grantee} {permission} on {label[key]}")


def _quarantine(mlflow: Mlflow, key: tuple[str, str], reason: str) -> None:
    kind, resource = key
    if kind == "experiment":
        mlflow.expect(
            "POST", "/api/2.0/mlflow/experiments/set-experiment-tag",
            {"experiment_id": resource, "key": QUARANTINE_TAG, "value": reason[:4000]},
        )  # fmt: skip
    else:
        mlflow.expect(
            "POST", "/api/2.0/mlflow/registered-models/set-tag",
            {"name": resource, "key": QUARANTINE_TAG, "value": reason[:4000]},
        )  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: mlflow_access_job URL SECRETS_DIR BRAND [BRAND ...]", file=sys.stderr)
        return 2
    url, secrets, brands = argv[0], pathlib.Path(argv[1]), argv[2:]
    mlflow = Mlflow(url, (secrets / "admin-password").read_text().strip())
    failed: list[str] = []
    try:
        mlflow.wait_healthy()
        for brand in brands:
            access = BrandAccess(brand)
            for user in (access.writer, access.reader):
                done = set_user(mlflow, user, (secrets / user).read_text().strip())
                print(f"mlflow-access: {done}", flush=True)
            users = mlflow.expect("GET", "/api/2.0/mlflow/users/list").get("users", [])
            reconcile_brand(mlflow, access, users)
            for line in access.reports:
                print(f"mlflow-access: {brand}: {line}", flush=True)
            failed.extend(f"{brand}: {refusal}" for refusal in access.refusals)
    except MlflowError as error:
        print(f"mlflow-access: {error}", file=sys.stderr)
        return 1
    if failed:
        print("mlflow-access: refused:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
