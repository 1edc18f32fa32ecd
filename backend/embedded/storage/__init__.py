"""The Storage stand-in: Supabase Storage's object routes over `storage.objects` and local files."""
