"""HTTP routers: thin. Each parses, authorizes, calls one service, and maps the result to an API body."""
