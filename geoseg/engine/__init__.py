"""The distributed engine: prediction jobs, block tasks and the assembly (``geoseg predict``,
:func:`geoseg.engine.predict.predict`), on the cluster of :mod:`geoseg.cluster`."""
