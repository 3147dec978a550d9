"""What runs on Ray Serve: one application per served model version (see `app.build`)."""
