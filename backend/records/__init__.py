"""Typed rows and status enums, one module per table (with the `.sql` of the reads it owns).

A row is decoded from the database into a msgspec Struct, so a column the code misnames fails at the
read, and a status outside the table's CHECK constraint fails there too. Records import only
`backend.db` and leaf utilities; the use cases above them read and write through them.
"""
