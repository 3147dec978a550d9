"""The controller: the HTTP API, the database, the background loops and the launchers."""
