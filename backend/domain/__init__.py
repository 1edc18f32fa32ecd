"""Domain services: one function per use case, each taking the connection it runs on."""
