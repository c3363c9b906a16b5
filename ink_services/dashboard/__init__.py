"""The dashboard: the user's jobs, interactive jobs per app, cluster load."""
