"""Fixtures and factories shared by the test suite: real components started for the session."""
