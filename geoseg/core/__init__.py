"""The pure core: the global tile grid, blending, classes, metrics and transitions.

Nothing here imports dask or torch (tests/test_architecture.py checks it), so every stage and
every worker can use it cheaply.
"""
