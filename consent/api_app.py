"""The FastAPI app every fedrisk HTTP service starts from (the coordinator's scoring and
consent API, each participant's partial-inference service).

- ``/docs`` (Swagger UI) and ``/redoc`` load their scripts, styles and icon from the
  installed ``fastapi-offline`` package, under ``/static-offline-docs``: a bank's network
  without internet access shows them as well as any other. Nothing on either page names
  another host: no CDN, no web fonts, and Swagger UI's online validator badge (which would
  send the schema's address to validator.swagger.io) is off.
- Routes are :class:`consent.route_guard.GuardedRoute`: who may call a route is decided
  before its body is read.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from consent.route_guard import GuardedRoute

__all__ = ["DOCS_ASSETS", "api_app"]

#: Where the documentation pages' assets are served.
DOCS_ASSETS = "/static-offline-docs"


def api_app(*, title: str, description: str, version: str = "1", **options: Any) -> FastAPI:
    """A FastAPI app with offline documentation and guarded routes (``options`` go to
    :class:`fastapi.FastAPI`)."""
    app = FastAPIOffline(
        title=title,
        description=description,
        version=version,
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None, **options.pop("swagger_ui_parameters", {})},
        **options,
    )
    app.router.route_class = GuardedRoute
    return app
