from __future__ import annotations

# The API tests' app, tokens and job types.
from tests.api.conftest import api_config, api_registry, gates, harness

__all__ = ["api_config", "api_registry", "gates", "harness"]
