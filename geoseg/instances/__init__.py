"""Instances of a class map's thing classes: one id per object over the whole scene, polygons,
counts, and panoptic quality against instance references (``geoseg instances``)."""
