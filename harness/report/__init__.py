"""Reports rendered from the store alone (never from a live session)."""
