"""What each environment serves: the release state machine (pure), the release files, and
publishing a model under its content hash (and fetching it back)."""
