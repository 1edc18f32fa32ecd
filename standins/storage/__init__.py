"""The Storage stand-in: Supabase Storage's object routes over `storage.objects` and local files, whole in this
package: `service` (the rules and the files), `routes` (`/storage/v1`), `in_process` (what mounts the routes, in
the API or on their own, and the client that reaches them without a socket), `tokens` (signed URLs), `errors`
(Storage's envelope) and `orphan_files` (the sweep of files without a row)."""
