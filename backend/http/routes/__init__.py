"""The API's route handlers, one module per area: typed dependencies in, one service call, a msgspec Struct out."""
