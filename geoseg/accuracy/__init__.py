"""Accuracy assessment: reference data on the map grid, confusion matrices and area
estimates, stratified samples (``geoseg evaluate`` / ``sample``,
:mod:`geoseg.accuracy.evaluate`)."""
