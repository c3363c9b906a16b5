"""Small web apps INK runs inside a job, behind jupyter-server-proxy."""
