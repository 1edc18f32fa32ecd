"""Object storage (production): the one client voicegate uses, over Supabase Storage's API."""
