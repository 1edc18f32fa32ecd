"""The Storage stand-in: Supabase Storage's object routes over `storage.objects` and local files, whole in this
package. The service: `objects` (signing, uploads, reads, moves, copies, deletes), `listing` (list and list-v2),
`buckets`, `uploads` (a body streamed in and moved into place), `access` (the caller's transaction, the lock a
write takes) and `rules` (keys, MIME types, limits). The routes (`/storage/v1`): `routes` (the router and
Storage's error envelope), `signed_url_routes`, `object_routes`, `list_routes`, `bucket_routes`, and what they
share, `route_requests` and `route_responses`. Then `in_process` (what mounts the routes, in the API or on their
own, and the client that reaches them without a socket), `tokens` (signed URLs), `errors` (Storage's envelope)
and `orphan_files` (the sweep of files without a row)."""
