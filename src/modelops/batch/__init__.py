"""Batch scoring: a released (or trained) model scores a table; runbooks/batch-scoring.md."""
