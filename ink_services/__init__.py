"""INK's hub-managed services and the `ink` command."""
