"""``geoseg run WORKFLOW.yaml``: registered on the main app (see cli.py)."""

from __future__ import annotations

from geoseg.cli import app  # noqa: F401  (commands below register on it)
