"""The developers' build tools, not shipped in the wheel: `make schema` (schema), `make lock` (lock) and the
licence notices (notices)."""
