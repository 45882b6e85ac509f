"""Maps side by side on one reference: metrics, per-class differences, McNemar per pair,
disagreement maps (``geoseg compare``, :func:`geoseg.compare.compare.compare`)."""
