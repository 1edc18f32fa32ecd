"""What every route shares: typed dependencies (the caller, the pool, Storage, settings), the
Idempotency-Key protocol and the health probes."""
