"""I/O at the edges: PostgreSQL, the command line, logging."""
