"""Training checkpoints without pickles: tensors in safetensors, everything else in JSON.

A checkpoint folder holds ``state.json`` (epoch, history, optimizer hyper-parameters, and the
names and checksums of the tensor files) and the files it names: the last epoch's model and
AdamW moment tensors, and the best validation epoch's model (``model-eNNNN.safetensors``,
``optimizer-eNNNN.safetensors``, ``best-eNNNN.safetensors``). New files get new names and
``state.json`` is replaced last, atomically, so an interrupted save leaves the previous
checkpoint whole; files no longer named are removed afterwards.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from geoseg.errors import GeoSegError
from geoseg.io.files import atomic_path
from geoseg.model.bundle import sha256_file

STATE = "state.json"


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def split_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """An optimizer state_dict as (tensors, JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{pid}.{k}"] = v
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return _tensors(tensors), {"param_groups": sd["param_groups"], "scalars": scalars}


def join_optimizer(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    for pid, st in rest["scalars"].items():
        state.setdefault(int(pid), {}).update(st)
    return {"state": state, "param_groups": rest["param_groups"]}


def _write(d: Path, name: str, tensors: dict[str, torch.Tensor]) -> dict[str, str]:
    with atomic_path(d / name, user_error=False) as tmp:
        save_file(_tensors(tensors), str(tmp))
    return {"file": name, "sha256": sha256_file(d / name)}


def save_checkpoint(
    folder: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    best: bool,
) -> None:
    """Write epoch ``state["epoch"]``: model, optimizer, ``state`` (JSON-able) and, if
    ``best``, the model as the best one so far."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    tag = f"e{int(state['epoch']):04d}"
    old = json.loads((d / STATE).read_text()).get("files", {}) if has_checkpoint(d) else {}
    opt_tensors, opt_rest = split_optimizer(optimizer.state_dict())
    files = {
        "model": _write(d, f"model-{tag}.safetensors", model.state_dict()),
        "optimizer": _write(d, f"optimizer-{tag}.safetensors", opt_tensors),
    }
    if best or "best" not in old:
        files["best"] = _write(d, f"best-{tag}.safetensors", model.state_dict())
    else:
        files["best"] = old["best"]
    with atomic_path(d / STATE, user_error=False) as tmp:
        tmp.write_text(json.dumps({**state, "optimizer": opt_rest, "files": files}, indent=1))
    keep = {f["file"] for f in files.values()}
    for f in d.glob("*.safetensors"):
        if f.name not in keep:
            f.unlink()


def has_checkpoint(folder: str | Path) -> bool:
    return (Path(folder) / STATE).exists()


def clear_checkpoint(folder: str | Path) -> None:
    """Remove a previous run's checkpoint (a fresh run starts over)."""
    d = Path(folder)
    (d / STATE).unlink(missing_ok=True)
    for f in d.glob("*.safetensors"):
        f.unlink()


def remove_checkpoint(folder: str | Path) -> None:
    """Remove a checkpoint and its folder once empty (a folder holding anything else stays)."""
    d = Path(folder)
    clear_checkpoint(d)
    with contextlib.suppress(OSError):  # absent, or holding files not the checkpoint's
        d.rmdir()


def _load(path: Path, expected: str | None) -> dict[str, torch.Tensor]:
    if expected is not None and sha256_file(path) != expected:
        raise GeoSegError(
            f"{path} does not match its checksum in {STATE}: the checkpoint was "
            "changed or interrupted while being written"
        )
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as e:
        raise GeoSegError(
            f"{path} is not a safetensors file ({str(e).splitlines()[0]}); "
            "checkpoints are never unpickled"
        ) from None


def read_state(folder: str | Path) -> dict[str, Any]:
    d = Path(folder)
    if not has_checkpoint(d):
        raise GeoSegError(f"no checkpoint to resume from in {d}: run without --resume first")
    try:
        return json.loads((d / STATE).read_text())
    except json.JSONDecodeError as e:
        raise GeoSegError(
            f"{d / STATE} is not valid JSON ({e.msg}): the checkpoint is damaged"
        ) from None


def load_tensors(folder: str | Path, state: dict[str, Any], which: str) -> dict[str, torch.Tensor]:
    """The tensors of ``which`` (model, optimizer or best) named in ``state``."""
    entry = state["files"][which]
    return _load(Path(folder) / entry["file"], entry["sha256"])


def load_checkpoint(
    folder: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> dict[str, Any]:
    """Restore model and optimizer from ``folder``; returns the saved state."""
    state = read_state(folder)
    try:
        model.load_state_dict(load_tensors(folder, state, "model"), strict=True)
    except RuntimeError as e:
        raise GeoSegError(
            f"the checkpoint in {folder} does not fit this model "
            f"({str(e).splitlines()[0][:160]}): was the config changed?"
        ) from None
    optimizer.load_state_dict(
        join_optimizer(load_tensors(folder, state, "optimizer"), state["optimizer"])
    )
    return state
