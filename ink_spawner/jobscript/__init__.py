"""What runs inside the job: environment set-up, the single-user server, the report home."""
