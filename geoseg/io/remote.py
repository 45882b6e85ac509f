"""Remote outputs (S3 and other object stores through fsspec): write locally, then upload.

Inputs need nothing from here: GDAL reads ``/vsis3/bucket/key.tif`` (and rasterio
``s3://bucket/key.tif``) by HTTP range requests, configured by the usual variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_S3_ENDPOINT``, ``AWS_HTTPS``,
``AWS_VIRTUAL_HOSTING``), which Dask workers must have in their environment too (a local
cluster started by geoseg inherits them).

Outputs (``s3://bucket/out.tif`` or ``/vsis3/bucket/out.tif``) are written into a local
temporary folder by the usual code, then each file is uploaded under a temporary key beside
its final one, copied to the final key and the temporary key deleted, so that no partial
object ever appears under a final name. The main file goes last: its presence means the set
is complete. The S3 endpoint for uploads comes from ``AWS_ENDPOINT_URL_S3`` or
``AWS_ENDPOINT_URL``, else from GDAL's ``AWS_S3_ENDPOINT``/``AWS_HTTPS``, so one set of
variables serves reads and writes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from geoseg.errors import GeoSegError

# GDAL virtual file systems and the fsspec protocols they correspond to
_VSI = {"/vsis3/": "s3://", "/vsigs/": "gs://", "/vsiaz/": "az://", "/vsiadls/": "abfs://"}
_SCHEMES = ("s3://", "gs://", "gcs://", "az://", "abfs://")


def is_remote(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an object in a remote store (an output geoseg must upload)."""
    p = os.fspath(path)
    return p.startswith(_SCHEMES) or p.startswith(tuple(_VSI))


def fsspec_url(path: str | os.PathLike) -> str:
    """``/vsis3/bucket/key`` -> ``s3://bucket/key``; fsspec URLs are returned as they are."""
    p = os.fspath(path)
    for vsi, scheme in _VSI.items():
        if p.startswith(vsi):
            return scheme + p[len(vsi) :]
    return p


def storage_options(url: str) -> dict:
    """fsspec options for ``url``: the S3 endpoint from the AWS (or GDAL) variables."""
    if not url.startswith("s3://"):
        return {}
    env = os.environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not endpoint and env.get("AWS_S3_ENDPOINT"):
        host = env["AWS_S3_ENDPOINT"]
        plain = env.get("AWS_HTTPS", "YES").upper() in ("NO", "FALSE", "OFF", "0")
        endpoint = host if "://" in host else f"{'http' if plain else 'https'}://{host}"
    return {"endpoint_url": endpoint} if endpoint else {}


def filesystem(url: str):
    """(fsspec file system, path within it) for a remote ``url``."""
    try:
        import fsspec
    except ImportError:  # pragma: no cover - fsspec comes with dask
        raise GeoSegError(f"writing {url} needs fsspec: pip install 'geoseg[remote]'") from None
    url = fsspec_url(url)
    try:
        return fsspec.core.url_to_fs(url, **storage_options(url))
    except (ImportError, ValueError) as e:
        raise GeoSegError(
            f"cannot write {url} ({str(e).splitlines()[0]}): install the "
            "file system's package, e.g. pip install 'geoseg[remote]' for s3://"
        ) from None


def _why(e: BaseException) -> str:
    return str(e).splitlines()[0] if str(e) else type(e).__name__


def check_remote_output(url: str, overwrite: bool) -> None:
    """Fail before any work if ``url`` exists (without ``overwrite``) or cannot be reached."""
    fs, path = filesystem(url)
    try:
        fs.invalidate_cache()
        exists = fs.exists(path)
    except Exception as e:  # noqa: BLE001 - network, credentials, missing bucket
        raise GeoSegError(
            f"cannot reach {url} ({_why(e)}): check the bucket, the credentials "
            "and the endpoint (AWS_* variables)"
        ) from None
    if exists and not overwrite:
        raise GeoSegError(f"{url} already exists: pass --overwrite to replace it")


def upload(local: str | os.PathLike, url: str) -> str:
    """Copy the file ``local`` to ``url``: uploaded under a temporary key beside it, copied to
    the final key and the temporary key removed (no partial object under the final name)."""
    fs, path = filesystem(url)
    parent, _, name = path.rpartition("/")
    tmp = f"{parent}/.{name}.part-{uuid.uuid4().hex[:12]}"
    try:
        fs.put_file(os.fspath(local), tmp)
        fs.copy(tmp, path)
    except Exception as e:  # noqa: BLE001 - any store error: one line for the user
        raise GeoSegError(
            f"cannot upload {Path(local).name} to {fsspec_url(url)} ({_why(e)}): "
            "check the bucket, the credentials and the endpoint"
        ) from None
    finally:
        with contextlib.suppress(Exception):
            fs.rm_file(tmp)
    fs.invalidate_cache()
    return fsspec_url(url)


class LocalStaging:
    """A local stand-in for a remote output: write ``local``, the files land beside ``remote``."""

    def __init__(self, remote: str, folder: Path, is_dir: bool):
        self.remote = fsspec_url(remote).rstrip("/")
        self.folder = folder
        self.is_dir = is_dir
        self.local = folder if is_dir else folder / self.remote.rpartition("/")[2]

    def url(self, path: str | os.PathLike) -> str:
        """The remote URL of a file written under the local folder."""
        rel = Path(path).resolve().relative_to(self.folder.resolve()).as_posix()
        base = self.remote if self.is_dir else self.remote.rpartition("/")[0]
        return f"{base}/{rel}"

    def publish(self) -> list[str]:
        """Upload every file written locally; the main output (or report.json) last."""
        files = sorted(p for p in self.folder.rglob("*") if p.is_file())
        last = self.folder / "report.json" if self.is_dir else self.local
        files.sort(key=lambda p: p == last)
        return [upload(p, self.url(p)) for p in files]


@contextlib.contextmanager
def local_staging(
    remote: str, overwrite: bool, *, is_dir: bool = False, where: str | os.PathLike | None = None
) -> Iterator[LocalStaging]:
    """Yield a :class:`LocalStaging` for the remote output ``remote`` (a file, or a folder
    with ``is_dir``); what the block writes under ``.local`` is uploaded when it succeeds.

    The local folder is a new temporary one (under ``where`` if given: a folder the Dask
    workers see, for clusters on other machines) and is removed in any case."""
    check_remote_output(f"{remote.rstrip('/')}/report.json" if is_dir else remote, overwrite)
    if where is not None:
        Path(where).mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="geoseg-upload-", dir=where))
    try:
        st = LocalStaging(remote, folder, is_dir)
        yield st
        st.publish()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def default_staging_root() -> Path:
    """Staging for jobs with remote outputs: a fixed local folder, so that a re-run resumes."""
    return Path(tempfile.gettempdir()) / "geoseg-staging"
