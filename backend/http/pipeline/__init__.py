"""What every request passes through around its route: its framing and access-log line (`exchange`), the entry check
(`entry`), database admission (`db_admission`), the host and method rules, the problem+json mapping (`problem`), and
the server that runs the app (`server`)."""
