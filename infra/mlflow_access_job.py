"""The MLflow access job: the admin reserves each brand's MLflow names and grants them.

Run as ``python3 /opt/recplat/mlflow_access_job.py URL SECRETS_DIR BRAND [BRAND ...]`` by the
Job that ``infra/mlflow_access.py`` plans, from the MLflow server's image, which ships this
file with ``ranking_features`` next to it (``images/mlflow/Dockerfile``). ``SECRETS_DIR``
holds ``admin-password`` and, per brand, the password files ``brand-<b>`` (the writer:
training and the experiment evaluator) and ``brand-<b>-reader`` (the ranking service).

MLflow's basic-auth gives the *creator* of an experiment or registered model ``MANAGE`` on
it, and any signed-in user may create any name. So a brand that creates ``acme-ranker``
before acme does owns acme's model. This job closes that: before a brand's workloads start,
the admin

1. creates or updates the brand's two users;
2. creates ``recplat/<b>``, ``recplat/<b>/experiments`` and ``<b>-ranker`` itself when they
   do not exist yet, and tags them ``recplat.reserved-for=<b>``;
3. finds every other user's grant on them, revokes it and reports it;
4. grants the writer ``EDIT`` (runs, versions, aliases; never permissions or deletes) and the
   reader ``READ``, and nothing else.

A name that already existed with another user's grant on it is *taken*: after revoking the
grant, the job tags it ``recplat.quarantined`` and exits 1, so the brand's workloads never
start against a model somebody else may have written. It stays refused on every later run
until an admin has checked it and removed the tag (or deleted the object). A name the
brand's own users created before this job existed is adopted. Exit codes: 0 done, 1 refused
or MLflow failed (stderr says which), 2 usage.

Users and grants go through MLflow's auth client (``AuthServiceClient``), experiments and
registered models through its tracking client; both sign in from the process environment,
which only this process sees. Passwords never reach a log or an argument.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient
from mlflow.tracking import MlflowClient
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import http_request, verify_rest_response
from ranking_features.mlflow_names import (
    experiments_experiment_name,
    registered_model_name,
    training_experiment_name,
)

RESERVED_TAG = "recplat.reserved-for"
QUARANTINE_TAG = "recplat.quarantined"
ADMIN = "admin"
ADMIN_PASSWORD_FILE = "admin-password"  # noqa: S105 - a file name, not a secret
HEALTH_DEADLINE_S = 300
WRITER_PERMISSION = "EDIT"
READER_PERMISSION = "READ"
_SYNTHETIC_ROLE_PREFIX = "__user_"
"""The per-user role that ``grant_user_permission`` writes to; other roles are shared."""
_LIST_USERS = "/api/2.0/mlflow/users/list"
_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"

Key = tuple[str, str]
"""A grant's target: (resource type, resource id), e.g. ("registered_model", "acme-ranker")."""


class MlflowError(Exception):
    """An MLflow call failed in a way the job cannot continue past; the message says which."""


def _failed(doing: str, error: MlflowException) -> MlflowError:
    return MlflowError(f"{doing}: HTTP {error.get_http_status_code()} {error.message}")


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
        return (training_experiment_name(self.brand), experiments_experiment_name(self.brand))

    @property
    def model(self) -> str:
        return registered_model_name(self.brand)


@dataclass(frozen=True)
class Reserved:
    """One of the brand's names after reserving it."""

    key: Key
    label: str
    existed: bool
    """It was there before this run (created by someone, or by an earlier run)."""
    quarantine: str
    """Why it is quarantined (its ``recplat.quarantined`` tag), or ``""``."""


@dataclass(frozen=True)
class Admin:
    """The tracking server as the admin: MLflow's auth client for users and grants, its
    tracking client for experiments and registered models."""

    url: str
    auth: AuthServiceClient
    tracking: MlflowClient

    @classmethod
    def sign_in(cls, url: str, password: str) -> Admin:
        """MLflow's clients read basic-auth credentials from the environment only."""
        os.environ["MLFLOW_TRACKING_USERNAME"] = ADMIN
        os.environ["MLFLOW_TRACKING_PASSWORD"] = password
        url = url.rstrip("/")
        return cls(url, AuthServiceClient(url), MlflowClient(tracking_uri=url, registry_uri=url))

    def usernames(self) -> list[tuple[str, bool]]:
        """Every user and whether it is an admin."""
        # Raw REST: AuthServiceClient has no call that lists users (MLflow 3.17).
        response = http_request(get_default_host_creds(self.url), _LIST_USERS, "GET")
        users = verify_rest_response(response, _LIST_USERS).json().get("users", [])
        return [(str(user["username"]), bool(user.get("is_admin"))) for user in users]

    def grants_of(self, user: str) -> list[tuple[str, Key, str]]:
        """(role name, target, permission) of every grant ``user`` holds, through any role."""
        return [
            (role.name, (grant.resource_type, grant.resource_pattern), grant.permission)
            for role in self.auth.list_user_roles(user)
            for grant in role.permissions
        ]

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


def set_user(admin: Admin, user: str, password: str) -> str:
    """Create ``user`` or set its password; what was done."""
    try:
        admin.auth.get_user(user)
    except MlflowException as error:
        if error.error_code != _NOT_FOUND:
            raise _failed(f"looking up user {user}", error) from None
        admin.auth.create_user(user, password)
        return f"created {user}"
    admin.auth.update_user_password(user, password)
    return f"updated {user}"


def reserve_experiment(admin: Admin, access: BrandAccess, name: str) -> Reserved:
    """Create the experiment, tagged for the brand, unless it exists (then restore it)."""
    label = f"experiment {name}"
    experiment = admin.tracking.get_experiment_by_name(name)
    if experiment is None:
        experiment_id = admin.tracking.create_experiment(name, tags={RESERVED_TAG: access.brand})
        access.reports.append(f"reserved {label} (id {experiment_id})")
        return Reserved(("experiment", experiment_id), label, existed=False, quarantine="")
    experiment_id = experiment.experiment_id
    if experiment.lifecycle_stage == "deleted":
        admin.tracking.restore_experiment(experiment_id)
        access.reports.append(f"restored deleted {label} (id {experiment_id})")
    quarantine = experiment.tags.get(QUARANTINE_TAG, "")
    return Reserved(("experiment", experiment_id), label, existed=True, quarantine=quarantine)


def reserve_model(admin: Admin, access: BrandAccess) -> Reserved:
    """Create the registered model, tagged for the brand, unless it exists."""
    name, label = access.model, f"registered model {access.model}"
    try:
        model = admin.tracking.get_registered_model(name)
    except MlflowException as error:
        if error.error_code != _NOT_FOUND:
            raise
        admin.tracking.create_registered_model(name, tags={RESERVED_TAG: access.brand})
        access.reports.append(f"reserved {label}")
        return Reserved(("registered_model", name), label, existed=False, quarantine="")
    quarantine = model.tags.get(QUARANTINE_TAG, "")
    return Reserved(("registered_model", name), label, existed=True, quarantine=quarantine)


def revoke_foreign_grants(
    admin: Admin, access: BrandAccess, names: dict[Key, Reserved], users: list[tuple[str, bool]]
) -> dict[Key, list[str]]:
    """Revoke every other non-admin user's own grant on the brand's names; who held what.

    A grant through a shared role is reported, not revoked: removing the user from that
    role is an admin's decision."""
    foreign: dict[Key, list[str]] = {key: [] for key in names}
    for username, is_admin in users:
        if username in (access.writer, access.reader) or is_admin:
            continue
        for role, key, permission in admin.grants_of(username):
            if key not in names:
                continue
            held = f"{username}'s {permission}"
            if role.startswith(_SYNTHETIC_ROLE_PREFIX):
                admin.auth.revoke_user_permission(username, *key)
                access.reports.append(f"revoked {held} on {names[key].label}")
            else:
                held += f" (through role {role}; remove the user from that role)"
            foreign[key].append(held)
    return foreign


def refuse_taken(
    admin: Admin, access: BrandAccess, names: dict[Key, Reserved], foreign: dict[Key, list[str]]
) -> None:
    """Quarantine a name that existed with another user's grant; refuse every quarantined one."""
    for key, reserved in names.items():
        reason = reserved.quarantine
        if foreign[key] and reserved.existed:
            reason = "existed before recplat reserved it, with " + ", ".join(foreign[key])
            _tag(admin, key, QUARANTINE_TAG, reason[:4000])
        if reason:
            access.refusals.append(
                f"{reserved.label} is taken: {reason}. Check its runs, versions and "
                f"aliases; delete it if it is not {access.brand}'s, or remove its "
                f"{QUARANTINE_TAG!r} tag once it is clean; then run this job again"
            )


def _tag(admin: Admin, key: Key, tag: str, value: str) -> None:
    kind, resource = key
    if kind == "experiment":
        admin.tracking.set_experiment_tag(resource, tag, value)
    else:
        admin.tracking.set_registered_model_tag(resource, tag, value)


def grant_exactly(
    admin: Admin, access: BrandAccess, names: dict[Key, Reserved], training: Key
) -> None:
    """The writer EDIT on every name; the reader READ on the training experiment and the
    model; any other grant of theirs on these names revoked."""
    model: Key = ("registered_model", access.model)
    wanted = {
        access.writer: dict.fromkeys(names, WRITER_PERMISSION),
        access.reader: {training: READER_PERMISSION, model: READER_PERMISSION},
    }
    for grantee, permissions in wanted.items():
        current = {
            key: permission
            for role, key, permission in admin.grants_of(grantee)
            if role.startswith(_SYNTHETIC_ROLE_PREFIX)
        }
        for key, permission in sorted(current.items()):
            if key in names and permissions.get(key) != permission:
                admin.auth.revoke_user_permission(grantee, *key)
        for key, permission in sorted(permissions.items()):
            if current.get(key) != permission:
                admin.auth.grant_user_permission(grantee, *key, permission)
                access.reports.append(f"granted {grantee} {permission} on {names[key].label}")


def reconcile_brand(admin: Admin, access: BrandAccess, users: list[tuple[str, bool]]) -> None:
    """Reserve the brand's names, strip foreign grants, grant the brand exactly its own."""
    experiments = [reserve_experiment(admin, access, name) for name in access.experiments]
    names = {reserved.key: reserved for reserved in [*experiments, reserve_model(admin, access)]}
    foreign = revoke_foreign_grants(admin, access, names, users)
    refuse_taken(admin, access, names, foreign)
    grant_exactly(admin, access, names, training=experiments[0].key)


def run(url: str, secrets: Path, brands: list[str]) -> list[str]:
    """Reconcile every brand, printing what was done; the refusals."""
    admin = Admin.sign_in(url, (secrets / ADMIN_PASSWORD_FILE).read_text().strip())
    admin.wait_healthy()
    refused: list[str] = []
    for brand in brands:
        access = BrandAccess(brand)
        for user in (access.writer, access.reader):
            done = set_user(admin, user, (secrets / user).read_text().strip())
            print(f"mlflow-access: {done}", flush=True)
        reconcile_brand(admin, access, admin.usernames())
        for line in access.reports:
            print(f"mlflow-access: {brand}: {line}", flush=True)
        refused.extend(f"{brand}: {refusal}" for refusal in access.refusals)
    return refused


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: mlflow_access_job URL SECRETS_DIR BRAND [BRAND ...]", file=sys.stderr)
        return 2
    try:
        refused = run(argv[0], Path(argv[1]), argv[2:])
    except MlflowError as error:
        print(f"mlflow-access: {error}", file=sys.stderr)
        return 1
    except MlflowException as error:
        print(f"mlflow-access: {_failed('MLflow', error)}", file=sys.stderr)
        return 1
    if refused:
        print("mlflow-access: refused:\n  " + "\n  ".join(refused), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
