"""Initial encoder weights from a local file (geoseg downloads nothing).

The file is a state_dict of the encoder alone or of a whole smp model (keys ``encoder.*``), as
safetensors or a torch file read with ``weights_only=True``. Tensors whose shape does not fit
(for example the first convolution when the file was made for 3 bands) are left as
initialised; at least half of the encoder's tensors must load.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from geoseg.errors import GeoSegError

log = logging.getLogger(__name__)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.exists():
        raise GeoSegError(f"encoder weights {p} do not exist (model.encoder_weights)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(p))
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - one line for the user
        raise GeoSegError(
            f"cannot read {p} as a state_dict with weights_only=True "
            f"({type(e).__name__}); geoseg loads no arbitrary pickles"
        ) from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return state


def load_encoder_weights(model: torch.nn.Module, path: str | Path) -> dict[str, int]:
    """Copy matching tensors of ``path`` into ``model.encoder``; returns what was done."""
    state = read_state_dict(path)
    if any(k.startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    own = model.encoder.state_dict()
    fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    skipped = sorted(k for k in state if k in own and k not in fit)
    if len(fit) < len(own) / 2:
        raise GeoSegError(
            f"encoder weights {path} fit only {len(fit)} of the encoder's "
            f"{len(own)} tensors: are they for this encoder "
            f"({type(model.encoder).__name__})?"
        )
    model.encoder.load_state_dict(fit, strict=False)
    if skipped:
        log.warning(
            "encoder weights: %d tensor(s) of another shape left as initialised: %s",
            len(skipped),
            ", ".join(skipped[:3]),
        )
    return {"loaded": len(fit), "skipped": len(skipped), "total": len(own)}
