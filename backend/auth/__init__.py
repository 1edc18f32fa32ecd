"""Supabase-compatible authentication (production): settings, access-token and service-key verification.
Dev tokens for embedded mode are minted by `standins.dev_tokens`."""
