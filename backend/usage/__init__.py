"""What each user has spent at the voice providers this window, as they read it (`GET /api/v1/usage`): the
service (`service`) and its answer (`types`)."""
