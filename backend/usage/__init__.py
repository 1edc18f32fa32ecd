"""Usage: what each user spends at the voice providers, and the quota it is held to. Charging, the one path every
provider call that sends text goes through (`charge`: a call's first send reserved, each resend, the unsent given
back), over the ledger's statements (`ledger`); how a user's synthesis jobs come to the database's count, one at a
time (`job_admission`); and what a user has spent this window, as they read it (`GET /api/v1/usage`: `service`,
its answer in `types`)."""
