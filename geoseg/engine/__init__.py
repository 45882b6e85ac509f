"""Dask cluster set-up and the distributed jobs."""
