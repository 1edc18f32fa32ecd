"""Local stand-ins for what Supabase provides, for embedded mode and the tests: the PostgreSQL server,
the Storage service (`/storage/v1`) and dev access tokens. Production code never needs them."""
