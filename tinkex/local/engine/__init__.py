"""Model-side state of the local server: futures, per-model sequencing, jobs.

* :mod:`.futures`: server-side future records (``retrieve_future`` answers from them).
* :mod:`.sequencer`: training runs in memory and their strict ``seq_id`` ordering.
* :mod:`.jobs`: what each training / sampling request computes (worker threads).
* :mod:`.outcomes`: results vs failures across threads.
* :mod:`.resends`: whether a request resends the one accepted under its number.
"""

from __future__ import annotations

from tinkex.local.engine import resends
from tinkex.local.engine.futures import FutureRecord, FutureTable
from tinkex.local.engine.outcomes import Failure, UserError, failure_of, run_guarded
from tinkex.local.engine.sequencer import Job, JobFn, Sequencer, TrainingModel

__all__ = [
    "Failure",
    "FutureRecord",
    "FutureTable",
    "Job",
    "JobFn",
    "Sequencer",
    "TrainingModel",
    "UserError",
    "failure_of",
    "resends",
    "run_guarded",
]
