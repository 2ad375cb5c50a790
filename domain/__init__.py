"""The case-tracking domain: plain Python, no database, broker or HTTP."""
