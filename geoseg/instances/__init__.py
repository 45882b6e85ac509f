"""Instances of a class map's thing classes: one id per object over the whole scene, polygons,
counts, and panoptic quality against instance references (``geoseg instances``).

``from geoseg.instances import instances`` is :func:`geoseg.instances.label.instances`,
imported on first use (the CLI and the workflow schema read the options without dask)."""


def __getattr__(name: str):
    if name == "instances":
        from geoseg.instances.label import instances

        return instances
    raise AttributeError(name)
