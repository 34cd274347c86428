"""The two cache levels: level 1 in this process, level 2 shared (Redis or the embedded store)."""
