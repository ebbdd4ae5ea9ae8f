"""Models: what each accepts (catalog.yaml, a release's data), what servers corrected (shapes), when each shuts down
(retirement, from the endpoint's GET /v1/models and the catalog), and the endpoint's own list (listing)."""

from lib.models.catalog import (
    ModelInfo,
    as_of,
    base_name,
    default_effort,
    default_model,
    effort_for,
    effort_ladder,
    model_info,
    nearest_effort,
)
from lib.models.retirement import ListedModel, Retirement, retirement, today
from lib.models.shapes import Fixes, Shaper, request_params

DEFAULT_MODEL = default_model()

__all__ = [
    "DEFAULT_MODEL",
    "Fixes",
    "ListedModel",
    "ModelInfo",
    "Retirement",
    "Shaper",
    "as_of",
    "base_name",
    "default_effort",
    "default_model",
    "effort_for",
    "effort_ladder",
    "model_info",
    "nearest_effort",
    "request_params",
    "retirement",
    "today",
]
