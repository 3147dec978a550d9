"""The SDK: a typed HTTP client of the controller (`dljobs.client.http.Client`); the CLI talks only to it.

Errors are in `dljobs.client.errors`. This package itself imports nothing, so the CLI starts fast.
"""
