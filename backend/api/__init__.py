"""What every route shares: typed dependencies (the caller, the pool, Storage, settings), the
Idempotency-Key protocol, the streaming multipart reader, field types and the health probes."""
