"""The modelops model server."""
