"""The file service: browse, upload, download, preview and share the user's storage."""
