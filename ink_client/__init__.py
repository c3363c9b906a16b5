"""The light client: the `ink` command on a laptop or in a job (login, jobs, files, ssh-proxy)
and the HTTP client of INK's REST APIs. Depends on requests and tornado only."""
