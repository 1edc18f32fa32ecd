"""HTTP route handlers: parse, call one service function, return a msgspec Struct."""
