"""HTTP service: app factory, cross-cutting middleware, auth and the command line."""
