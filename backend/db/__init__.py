"""Database access: connection pools, request-scoped role switching, named queries and migrations."""
