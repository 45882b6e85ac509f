"""The Dask cluster every stage fans its work out over: getting a client (``setup``), one task
per item followed to a clean end (``tasks``), the progress bar of a job's blocks (``progress``)."""
