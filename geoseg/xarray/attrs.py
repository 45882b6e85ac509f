"""Attributes of the arrays ``geoseg.xarray.predict`` returns: a class map's
(:func:`geoseg.io.classmap.list_attrs`) and the model's name."""

from __future__ import annotations

from geoseg.core.classes import ClassList
from geoseg.io.classmap import classes_json, list_attrs


def class_attrs(meta, probabilities: bool = False) -> dict:
    classes: ClassList = meta.class_list
    base = {"model": f"{meta.name} {meta.version}"}
    if probabilities:
        return {
            **base,
            "long_name": "class probability",
            "scale_factor": 1 / 254,
            "nodata": 255,
            "classes": classes_json(classes),
        }
    return {**base, "long_name": "land-cover class", **list_attrs(classes)}
