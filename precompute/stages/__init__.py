"""The pipeline's stages, one file each; `precompute.runner` calls them in order.

`base` holds the sequence every stage shares (skip when complete, time, compute, write, mark, clear the
parts, wait for rank 0); `chunked` the resumable part files; `context` what every stage is given.
"""
