"""INK's Python client for notebooks and scripts.

In a session INK started, it needs nothing: the session's own token and the hub's address are
in its environment (``INK_HUB``, ``JUPYTERHUB_API_TOKEN``). On a laptop it uses the token
``ink login`` stored.

- :mod:`ink.jobs`: submit batch jobs (and arrays of them), watch, wait, read their output.
- :mod:`ink.dask`: :class:`~ink.dask.InkCluster`, a Dask cluster whose workers are batch jobs.
"""
