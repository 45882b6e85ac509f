"""The baselines' classifiers: scikit-learn's random forest, or an RBF SVM on scaled features.

Classes are class indices 0..n-1 of the class list; a class without training samples gets
probability 0 everywhere.
"""

from __future__ import annotations

import numpy as np

from geoseg.baseline.config import ClassifierConfig
from geoseg.errors import GeoSegError

PREDICT_CHUNK = 262_144  # rows per predict_proba call (bounds the memory of one call)


def make_classifier(cc: ClassifierConfig, seed: int):
    weight = "balanced" if cc.class_weight == "balanced" else None
    if cc.kind == "rf":
        from sklearn.ensemble import RandomForestClassifier

        params = {"n_estimators": 200, "random_state": seed, "n_jobs": 1, **cc.params}
        return RandomForestClassifier(class_weight=weight, **params)
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    # probabilities by Platt scaling on cross-validated decisions (sklearn's replacement for
    # the deprecated SVC(probability=True))
    params = {"C": 10.0, "gamma": "scale", "random_state": seed, **cc.params}
    svc = SVC(class_weight=weight, **params)
    return make_pipeline(StandardScaler(), CalibratedClassifierCV(svc, ensemble=False))


def fit(
    cc: ClassifierConfig,
    seed: int,
    x: np.ndarray,
    y: np.ndarray,
    names: list[str],
    what: str = "training objects",
):
    """The classifier of ``cc`` fitted on at most ``cc.max_samples`` rows of (x, y), and the
    training samples used per class."""
    if len(y) > cc.max_samples:
        keep = np.sort(
            np.random.default_rng([seed, 17]).choice(len(y), cc.max_samples, replace=False)
        )
        x, y = x[keep], y[keep]
    counts = np.bincount(y, minlength=len(names))
    present = np.flatnonzero(counts)
    if len(present) < 2:
        only = ", ".join(names[i] for i in present) or "none"
        raise GeoSegError(
            f"the {what} hold {len(present)} class ({only}): check the labels, "
            "the split and min_overlap (a classifier needs two classes or more)"
        )
    model = make_classifier(cc, seed)
    if cc.kind == "rf" and "n_jobs" not in cc.params:
        # the client fits while the workers wait: all its cores; then one per worker task
        model.set_params(n_jobs=-1)
        model.fit(x, y)
        model.set_params(n_jobs=1)
    else:  # the SVM's calibration cross-validates: every class needs 2 samples or more
        few = int(counts[present].min())
        if few < 2:
            rare = names[int(present[counts[present].argmin()])]
            raise GeoSegError(
                f"class {rare} has 1 of the {what}: the SVM's probability "
                "calibration needs 2 or more (use kind: rf, or a lower "
                "min_overlap)"
            )
        model.set_params(calibratedclassifiercv__cv=min(5, few))
        model.fit(x, y)
    return model, counts


def predict_proba(model, x: np.ndarray, n_classes: int) -> np.ndarray:
    """(rows x n_classes) float32 class probabilities; classes never trained on get 0."""
    out = np.zeros((len(x), n_classes), dtype=np.float32)
    cols = np.asarray(model.classes_, dtype=np.int64)
    for i in range(0, len(x), PREDICT_CHUNK):
        out[i : i + PREDICT_CHUNK, cols] = model.predict_proba(x[i : i + PREDICT_CHUNK])
    return out
