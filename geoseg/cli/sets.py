"""``--set KEY=VALUE``: dotted keys into a YAML config, values read as YAML scalars.

``--set training.epochs=5 --set model.encoder=resnet34`` gives
``{"training": {"epochs": 5}, "model": {"encoder": "resnet34"}}``, merged into the config
before it is validated, so a wrong key or value is reported like one written in the file.
"""

from __future__ import annotations

import yaml

from geoseg.errors import GeoSegError


def parse_sets(items: list[str] | None, example: str = "training.epochs=5") -> dict:
    """The nested mapping ``items`` (``KEY=VALUE`` each) stand for; later items win."""
    out: dict = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise GeoSegError(
                f"--set takes KEY=VALUE with a dotted key, e.g. --set {example}, got {item!r}"
            )
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise GeoSegError(
                f"--set {item}: {text!r} is not a YAML value: quote it, e.g. {key}='{text}'"
            ) from None
        node = out
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise GeoSegError(
                    f"--set {item}: {'.'.join(parts[: i + 1])} was set to a value above, "
                    "not a section"
                )
        node[parts[-1]] = value
    return out
