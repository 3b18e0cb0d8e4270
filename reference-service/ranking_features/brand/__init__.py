"""The brand file (``brands/<name>.yaml``): its model, its types, and how it is read.

Part of the contracts layer, so infra, the local platform, the CLI and the training jobs
all read brand files with this one model (docs/architecture.md, "Contracts"):

- ``fields``: the constrained types (brand name, Kubernetes quantities, cron schedule,
  owner address, cost center);
- ``model``: ``Brand`` and its sections, overrides per environment, the JSON Schema;
- ``problems``: ``BrandFileError``, whose problems read
  ``<file>: <field.path>: <what was expected>, got <what was found>``;
- ``loading``: ``load_brand``, ``load_brands`` and ``parse_brand`` (they raise nothing but
  ``BrandFileError``);
- ``flags``: the training jobs' flags a brand decides.
"""

from ranking_features.brand.fields import BRAND_NAME_PATTERN, NAME_HINT, BrandName
from ranking_features.brand.flags import ranking_drift_flags, ranking_train_flags
from ranking_features.brand.loading import (
    MAX_BRAND_FILE_BYTES,
    brand_files,
    load_brand,
    load_brand_files,
    load_brands,
    parse_brand,
)
from ranking_features.brand.model import (
    SCHEMA_FILE_NAME,
    Brand,
    Environment,
    Monitoring,
    PromotionMetric,
    Serving,
    Training,
    brands_for_environment,
    json_schema,
)
from ranking_features.brand.problems import BrandFileError, BrandProblem

__all__ = [
    "BRAND_NAME_PATTERN",
    "MAX_BRAND_FILE_BYTES",
    "NAME_HINT",
    "SCHEMA_FILE_NAME",
    "Brand",
    "BrandFileError",
    "BrandName",
    "BrandProblem",
    "Environment",
    "Monitoring",
    "PromotionMetric",
    "Serving",
    "Training",
    "brand_files",
    "brands_for_environment",
    "json_schema",
    "load_brand",
    "load_brand_files",
    "load_brands",
    "parse_brand",
    "ranking_drift_flags",
    "ranking_train_flags",
]
