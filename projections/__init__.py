"""Read models kept up to date from the case event log; each can be rebuilt from it."""
