"""The web shell: a terminal in the browser onto a login node, as the user."""
