"""Workflows: one YAML from scene to map, polygons, accuracy, change and an HTML report
(see :mod:`geoseg.workflow.runner`)."""

from __future__ import annotations


def run(*args, **kwargs):
    """Run a workflow; see :func:`geoseg.workflow.runner.run`."""
    from geoseg.workflow.runner import run as _run

    return _run(*args, **kwargs)


__all__ = ["run"]
