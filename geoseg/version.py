"""geoseg's version, one place for the package metadata, bundles, tags and reports."""

__version__ = "0.1.0"
