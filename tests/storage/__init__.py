"""Conformance suite: the MongoDB behaviours the service relies on, asserted directly with
PyMongo's async API against the session's server (embedded mongo-java-server, or MONGODB_URI)."""
