"""The ``geoseg`` command line; :mod:`geoseg.cli.main` assembles the app."""
