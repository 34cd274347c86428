"""Static resource synchronization for co-browse, as a WSGI middleware.

    from middleware import ResourceSyncMiddleware, Settings
    app.wsgi_app = ResourceSyncMiddleware(app.wsgi_app, redis_url="redis://localhost:6379/0")
"""

from .app import ResourceSyncMiddleware
from .settings import Settings, SettingsError

__all__ = ["ResourceSyncMiddleware", "Settings", "SettingsError"]
