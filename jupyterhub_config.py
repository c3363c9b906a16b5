# INK's hub configuration: everything comes from the site YAML (etc/ink.yaml or $INK_CONFIG).
# Sites and tests may layer their own settings on top:
#     load_subconfig("/path/to/ink/jupyterhub_config.py")
#     c.InkSpawner.backend = "slurm"
from ink_spawner.configurer import apply_site_config

c = get_config()  # noqa: F821 (provided by traitlets when it loads this file)
apply_site_config(c)
