"""Rehearse production on one machine: `modelops up` / `modelops down` (`make up`, `make down`)."""
