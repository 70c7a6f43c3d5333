"""riskstream.api: the risk service (FastAPI) — live risk, reports, risk jobs, stress and back-tests, with the
store's entitlements on every endpoint and socket, and the dashboard it serves."""

from ._app import STATIC_DIR, build_context, create_app
from ._config import ApiConfig
from ._context import ApiContext
from ._identity import SCOPE_JOBS_WRITE, Identity

__all__ = [
    "SCOPE_JOBS_WRITE",
    "STATIC_DIR",
    "ApiConfig",
    "ApiContext",
    "Identity",
    "build_context",
    "create_app",
]
