"""Per-app idle timeouts for jupyterhub-idle-culler (the hub-managed service INK runs when the
site's ``sessions`` section sets an idle timeout).

The culler loads ``idle_culler_config.py`` (``--config``), which installs ``arbiter`` as its
``cull_arbiter_hook``. The site's timeouts reach it as JSON in ``INK_IDLE_TIMEOUTS``:
``{"default": 7200, "apps": {"desktop": 14400, "sshnode": 0}}`` (seconds; 0: never culled).
"""

from __future__ import annotations

import json
import os

ENV = "INK_IDLE_TIMEOUTS"


def timeouts_env(default_s: int, per_app_s: dict[str, int]) -> dict[str, str]:
    return {ENV: json.dumps({"default": int(default_s), "apps": {k: int(v) for k, v in per_app_s.items()}})}


def load_timeouts(environ=os.environ) -> tuple[int, dict[str, int]]:
    data = json.loads(environ.get(ENV) or "{}")
    return int(data.get("default", 0)), {str(k): int(v) for k, v in (data.get("apps") or {}).items()}


def idle_limit(server: dict, default_s: int, per_app_s: dict[str, int]) -> int:
    """The idle timeout of a server (its app from the spawn's user_options); 0: never."""
    app = (server.get("user_options") or {}).get("app", "")
    return per_app_s.get(app, default_s)


def arbiter(*, inactive, inactive_limit, server, **kwargs) -> bool:
    default_s, per_app_s = load_timeouts()
    limit = idle_limit(server, default_s, per_app_s)
    return bool(limit) and inactive.total_seconds() >= limit
