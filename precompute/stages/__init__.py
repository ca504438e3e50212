"""The pipeline's stages, one file each; `precompute.runner` calls them in order."""
