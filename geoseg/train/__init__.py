"""Training: scenes and labels to a model bundle (``geoseg train``,
:func:`geoseg.train.train.train`)."""
