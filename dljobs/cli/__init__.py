"""The `dljobs` command line: talks to the controller only through the SDK client (`dljobs.client`)."""
