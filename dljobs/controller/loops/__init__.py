"""Background loops: the scheduler (queue to launch) and the reconciler (Ray to database)."""
