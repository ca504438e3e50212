"""The experiment cache: configuration, on-disk format (docs/CACHE.md), writing and reading."""
