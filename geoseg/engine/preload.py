"""Dask worker preload: import the model stack when a local worker starts.

Importing torch takes seconds; done at worker start-up it is paid once per cluster instead of
inside the first task of every job's first block. segmentation-models-pytorch (another ~2.5 s
with timm) is left to the first block that builds a torch model: with the default OpenVINO
runtime and its cached conversion, a worker never needs it.
"""

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading

# A terminal's Ctrl-C reaches every process of its group, local workers included, whose
# asyncio loops then died printing tracebacks: the client alone handles the interrupt (it
# cancels the job and closes the cluster), so local workers ignore SIGINT.
if threading.current_thread() is threading.main_thread():
    signal.signal(signal.SIGINT, signal.SIG_IGN)

import torch  # noqa: E402, F401

import geoseg.engine.blocks  # noqa: E402, F401
import geoseg.model.runner  # noqa: E402, F401

with contextlib.suppress(Exception):  # optional; the runtime choice reports its absence
    import openvino  # noqa: F401


# A worker process that holds torch and a model spends 1 to 4 s in the interpreter's
# finalisation after its worker has closed (freeing the model's memory, torch's and OpenVINO's
# static destructors), beyond the nanny's 4 s grace on a busy machine, which then kills it
# with a warning. Once the worker has closed cleanly there is nothing left to finalise that
# matters (tasks wrote their files synchronously), so the process leaves at once.
_closed = False


def dask_teardown(worker) -> None:  # distributed calls it when the worker closes
    global _closed
    _closed = True


def _leave_at_once() -> None:
    if _closed:
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(0)


atexit.register(_leave_at_once)  # registered first, so it runs after every other handler
