"""Traditional baselines for the deep model: object-based (OBIA), pixel random forest, Otsu.

They read the same training labels and spatial split as ``geoseg train`` (through its config)
and write class COGs like the engine's, so ``geoseg compare`` scores them side by side.
"""
