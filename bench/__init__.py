"""Benchmarks behind the figures in docs/BENCHMARKS.md, each a module run from the repository's root.

    python -m bench.bench_maps --device cpu      # one of them; each module's docstring gives its usage
    bash bench/gpu_checks.sh                     # the GPU figures in one go

They import the project's packages like any other code (run from the root, or after `pip install -e .`).
"""
