"""INK's custom scopes of the hub's API tokens: what a user's token may do with INK's APIs
(the hub's ``user`` role holds them all; a script's token can be made with fewer)."""

JOBS_SUBMIT = "custom:ink:jobs:submit"
JOBS_READ = "custom:ink:jobs:read"
FILES_READ = "custom:ink:files:read"
FILES_WRITE = "custom:ink:files:write"

CUSTOM_SCOPES = {
    JOBS_SUBMIT: {"description": "Submit and cancel batch jobs with INK's jobs API."},
    JOBS_READ: {"description": "List batch jobs and read their state and output."},
    FILES_READ: {"description": "List, read and preview files with INK's files API."},
    FILES_WRITE: {
        "description": "Upload, change and delete files; make share links.",
        "subscopes": [FILES_READ],
    },
}
