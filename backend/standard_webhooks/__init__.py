"""Standard Webhooks (standardwebhooks.com), the mechanism apart from voicegate's events: the signature
scheme (`signing`) and the sender that posts a signed body to an endpoint without becoming a way into
voicegate's own network (`sender`). The `webhooks` area decides what is sent, and to whom.
"""
