"""Relative radiometric normalisation between dates: a later scene fitted onto an earlier one
from pseudo-invariant pixels (``geoseg harmonize``, :func:`geoseg.harmonize.harmonize.harmonize`;
``geoseg change --normalize pif``)."""
