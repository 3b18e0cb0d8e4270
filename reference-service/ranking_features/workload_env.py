"""The workload environment, defined once (docs/architecture.md, "Contracts").

Infra (`infra.brand_pods`, `brand_service`, `brand_training`, `brand_dask`), `recplat local`
and the tests WRITE these variables; the ranking service (`ranking_service.settings`), the
training, experiment and drift jobs and the Dask scheduler's preload READ them. Both sides go
through the models below, so a variable has one name, one type and one default:

- a reader builds the model from the process environment (`ServiceEnv.read()`); a bad value
  raises `WorkloadEnvError` naming the variable, which the entry points print without a
  traceback;
- a writer asks the model for the variables of the values it sets
  (`ServiceEnv.variables(max_candidates=100, ...)`): each value is validated against its field
  (a field the model lacks is an error, so a misspelled variable cannot be written) and written
  as `str(value)`, exactly the string the writer would have typed. A value known only at
  deploy time (a Pulumi Output) is passed through as it is, unvalidated.

Variables are `RECPLAT_<FIELD>` except MLflow's own `MLFLOW_TRACKING_URI`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

from pydantic import AliasChoices, ConfigDict, Field, SecretStr, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from ranking_features.brand.fields import BrandName

PREFIX = "RECPLAT_"
TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
"""MLflow's own name: its client reads the same variable."""
_PLAIN = (str, int, float, bool, Path)


class WorkloadEnvError(ValueError):
    """The environment does not fit the contract; the message names each variable to fix."""


class EnvContract(BaseSettings):
    """A part of the workload environment: its fields are the variables, `RECPLAT_<FIELD>`."""

    # python-re: the brand name pattern (the brand file's own) needs a look-ahead.
    model_config = SettingsConfigDict(
        env_prefix=PREFIX, extra="ignore", frozen=True, regex_engine="python-re"
    )
    _role: ClassVar[str] = "workload"

    @classmethod
    def variable(cls, field: str) -> str:
        """The variable a field is read from; a field the contract lacks is an error."""
        info = cls.model_fields.get(field)
        if info is None:
            raise WorkloadEnvError(
                f"{cls.__name__} has no variable for {field!r}; "
                f"its fields are {', '.join(cls.model_fields)}"
            )
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            alias = alias.choices[0]
        return str(alias) if alias is not None else PREFIX + field.upper()

    @classmethod
    def variables(cls, **values: str | int | float | Path) -> dict[str, str]:
        """The variables for `values` (field name -> value), in the contract's field order.

        Each value is validated against its field and written as `str(value)`.
        """
        return {name: str(value) for name, value in cls.deploy_variables(**values).items()}

    @classmethod
    def deploy_variables(cls, **values: Any) -> dict[str, Any]:
        """`variables`, where a value known only at deploy time (anything but a str, number or
        path: a Pulumi Output) is written as it is, unvalidated."""
        unknown = sorted(set(values) - set(cls.model_fields))
        if unknown:
            raise WorkloadEnvError(
                f"{cls.__name__} has no variable for {', '.join(map(repr, unknown))}; "
                f"its fields are {', '.join(cls.model_fields)}"
            )
        written: dict[str, Any] = {}
        for field, info in cls.model_fields.items():
            if field not in values:
                continue
            value = values[field]
            if isinstance(value, _PLAIN):
                try:
                    _field_type(info).validate_python(value)
                except ValidationError as error:
                    problem = error.errors()[0]["msg"]
                    raise WorkloadEnvError(
                        f"{cls.variable(field)}: {problem}, got {value!r}"
                    ) from None
                value = str(value)
            written[cls.variable(field)] = value
        return written

    @classmethod
    def read(cls: type[_C]) -> _C:
        """The contract from the process environment; a bad value names its variable."""
        try:
            return cls()
        except ValidationError as error:
            problems = []
            for item in error.errors():
                field = str(item["loc"][0]) if item["loc"] else ""
                name = cls.variable(field) if field in cls.model_fields else field.upper()
                problems.append(f"{name}: {item['msg']}")
            raise WorkloadEnvError(
                f"invalid {cls._role} environment: " + "; ".join(problems)
            ) from None


_C = TypeVar("_C", bound=EnvContract)


_WRITE_CONFIG = ConfigDict(regex_engine="python-re")
"""As `EnvContract.model_config`: the brand name pattern needs Python's regex engine."""


def _field_type(info: FieldInfo) -> TypeAdapter[Any]:
    """A field's type with its constraints (bounds, pattern), to validate one written value."""
    annotated: Any = Annotated  # subscripted with a tuple built at run time
    field_type: Any = info.annotation
    if info.metadata:
        field_type = annotated[(field_type, *info.metadata)]
    return TypeAdapter(field_type, config=_WRITE_CONFIG)


class WorkloadEnv(EnvContract):
    """What every brand workload reads: which brand, where its registry and lake are.

    The jobs take each of these as a flag too (the flag wins); the service needs them set.
    """

    brand: str = ""
    """The brand's name (`brands/<name>.yaml`)."""
    env: str = "dev"
    """The environment (dev, prod): the brand file's overrides for it apply."""
    tracking_uri: str = Field(
        default="", validation_alias=AliasChoices(TRACKING_URI_VARIABLE, PREFIX + "TRACKING_URI")
    )
    """The MLflow tracking server."""
    model_name: str = ""
    """The registered model; empty means `<brand>-ranker` (`ranking_features.mlflow_names`)."""
    lake_uri: str = ""
    """The brand's lake: `abfs://<container>@<account>.dfs.core.windows.net` on Azure,
    `file://...` locally (`ranking_features.lake`)."""


class MlflowAuthEnv(EnvContract):
    """Who a workload is to MLflow on AKS (`ranking_features.mlflow_credentials`); unset
    locally, where the tracking server has no authentication."""

    mlflow_username: str = ""
    """The brand's MLflow user: `brand-<name>` (training) or its reader (the service)."""
    mlflow_password_file: str = ""
    """A file holding that user's password (a mounted Key Vault secret), never the password."""


class ServiceEnv(WorkloadEnv):
    """The ranking service's environment (`ranking_service.settings`), read once at start."""

    _role: ClassVar[str] = "service"

    brand: BrandName
    lake_uri: str
    api_key_file: Path
    """A file holding the brand's API key (a mounted secret); the key is never a variable."""
    max_candidates: Annotated[int, Field(ge=1, le=10_000)] = 100
    challenger_traffic: Annotated[float, Field(ge=0.0, le=0.5)] = 0.0
    """The brand file's `serving.challenger_traffic`: the challenger arm's share of users."""
    # The brand file's `serving.exploration` and `serving.default_k`, with its defaults
    # (ranking_features.brand.model.Serving; a test keeps the two equal).
    exploration: Annotated[float, Field(ge=0.0, le=0.2)] = 0.05
    default_k: Annotated[int, Field(ge=1, le=2000)] = 20
    exploration_seed: int | None = None
    """Seeds the exploration draws, so a test can replay them; unset in production."""
    feature_sample: Annotated[float, Field(ge=0.0, le=1.0)] = 0.01
    """The brand file's `monitoring.feature_sample`: the share of returned items whose feature
    vector is logged for drift monitoring (ranking_service.feature_sample)."""
    reload_interval_s: Annotated[float, Field(gt=0)] = 30.0
    event_log_dir: Path = Path("event-log")
    """The local append-only event log; on AKS an emptyDir, which outlives container restarts."""
    ship_interval_s: Annotated[float, Field(gt=0)] = 10.0
    max_body_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    max_feedback_batch: Annotated[int, Field(ge=1)] = 1000
    fallback_snapshot: str = ""
    """A FeatureSnapshot JSON (local path or fsspec URL) for the popularity fallback."""
    # Bounded registry calls, so a registry outage cannot stall a reload for minutes.
    registry_timeout_s: Annotated[int, Field(ge=1)] = 10
    registry_max_retries: Annotated[int, Field(ge=0)] = 2
    applicationinsights_connection_string: SecretStr | None = Field(
        default=None, validation_alias="APPLICATIONINSIGHTS_CONNECTION_STRING"
    )


class TrainingEnv(WorkloadEnv):
    """The training, experiment and drift jobs' environment (`ranking_training.job_env`)."""

    _role: ClassVar[str] = "training"

    git_sha: str = ""
    """The commit the image was built from; model versions are tagged with it (the image has
    no git)."""
    challenger_traffic: Annotated[float, Field(ge=0.0, le=0.5)] | None = None
    """The experiment job's challenger share when no flag or brand file gives it (the
    service's own variable, so both read one value)."""


class PulumiProgramEnv(EnvContract):
    """The Pulumi program's own input (`infra/__main__.py`), set by `recplat plan`."""

    _role: ClassVar[str] = "Pulumi program"

    brands_dir: Path | None = None
    """The brand files to stamp; unset, the repository's `brands/`."""


class DaskSchedulerEnv(EnvContract):
    """The brand's Dask scheduler (`ranking_training.dask_scheduler`)."""

    _role: ClassVar[str] = "Dask scheduler"

    training_workers: Annotated[int, Field(ge=1)]
    """The workers a training run gets while it is connected (`training.workers`)."""
