"""The precompute CLI: fills the experiment cache that the app reads (see README)."""
