"""What every part of INK shares, and which imports nothing else of INK: names and the errors
of file operations, the storage areas and INK's API scopes as the site YAML names them, the
shell's settings, file previews and HTTP Range answers (served by the file service and by the
ROOT browser app inside a job), and the front-end file both of them serve (``static/``).

Layers, each importing only those before it (``tests/unit/test_layout.py`` fails otherwise):
``ink_core`` -> ``ink_spawner`` (the hub side: spawner, backends, job wrapper, apps, the site
configurator) -> ``ink_services`` (the hub-managed services and the ``ink`` command).
"""

from pathlib import Path

STATIC = Path(__file__).with_name("static")  # ink-root.js: the file service's and the ROOT browser's
