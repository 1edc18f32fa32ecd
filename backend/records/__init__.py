"""Records: one module per table, its typed row and states, and the queries on it (its `.sql`); they
import only `backend.db` (and leaf utilities), so every use case can stand on them."""
