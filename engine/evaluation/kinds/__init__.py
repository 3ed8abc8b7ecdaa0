"""One runner per kind of promise: deadline, never, limit."""
