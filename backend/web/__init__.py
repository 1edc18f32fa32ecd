"""The demo page at `/`: its static files, the config and dev sign-in routes it needs, and the API docs
UI served from local assets (nothing the page or the docs load comes from the internet)."""
