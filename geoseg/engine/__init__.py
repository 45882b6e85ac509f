"""The distributed engine: cluster set-up, prediction jobs, block tasks and the assembly
(``geoseg predict``, :func:`geoseg.engine.predict.predict`)."""
