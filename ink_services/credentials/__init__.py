"""Kerberos credentials: keep each user's renewable ticket fresh and hand it to their jobs."""
