# jupyterhub-idle-culler's configuration as INK runs it (--config): per-app idle timeouts.
from ink_spawner.culling import arbiter

c = get_config()  # noqa: F821 - provided by traitlets when the culler loads this file
c.IdleCuller.cull_arbiter_hook = arbiter
