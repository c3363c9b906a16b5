"""Names INK checks before it uses them in a path or a command."""

import re

# a Unix user name as useradd accepts it (and as INK acts as)
USERNAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
