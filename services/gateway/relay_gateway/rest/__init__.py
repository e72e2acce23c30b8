"""The REST edge: thin routes that authenticate, validate and send commands."""
