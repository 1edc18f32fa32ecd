"""The developers' build tools, not shipped in the wheel: `make schema` (schema), `make lock` (lock), the
licence notices (notices) and the container image's slimming of its venv (slim_image, run by the Containerfile)."""
