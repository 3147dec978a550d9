"""Business logic. Services flush but never commit: the route or loop that calls them owns the transaction."""
