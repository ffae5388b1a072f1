"""The soak workload: training, checkpoints, sampling fan-out and REST listing, all at once.

:func:`run_workload` drives tinkex's public clients against a server (normally one with every
probabilistic fault on, see ``conftest.py``) for ``config.rounds`` rounds. Each round, while the
sampling fan-out of the previous round's snapshot (and of the base model) is in flight, it
pipelines ``steps_per_round`` training steps (``forward_backward`` + ``optim_step``, at most
``pipeline_depth`` steps unresolved), lists runs, checkpoints and sessions over REST, and queues
three checkpoints behind the steps: ``save_state``, ``save_weights_for_sampler`` and
``save_weights_and_get_sampling_client`` (the next round's sampler). Everything a round started
is awaited with ``concurrent.futures.wait`` and a deadline. At the end, a second training client
(the *probe*) sends one request the server rejects (400), then a valid one.

The :class:`Ledger` records what the client asked for, so the test can compare it with what the
server executed, and what was left after every client was closed (pending futures, threads).
Nothing here asserts: the tests in ``test_soak.py`` do. ``conftest.py`` runs this module as a
script in a fresh interpreter (:func:`main`), so the memory and threads are the client's alone.
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
import threading
import time
import weakref
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import tinkex
from tinkex import types

BASE_MODEL = "tinkex/tiny"
#: how long threads may take to end after close()
SETTLE_SECONDS = 20.0
ADAM = types.AdamParams(learning_rate=1e-2)
SAMPLING = types.SamplingParams(max_tokens=4, temperature=1.0)


def _datum(tokens: list[int]) -> types.Datum:
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
    )


BATCH = [_datum([10, 20, 30, 40, 50, 60]), _datum([70, 80, 90, 100, 110])]
#: A datum the server rejects with 400 (token id outside the 264-id vocabulary of tinkex/tiny).
BAD_BATCH = [_datum([10, 20, 100_000, 40])]


@dataclass(frozen=True)
class SoakConfig:
    """The size of one soak run."""

    rounds: int
    steps_per_round: int
    pipeline_depth: int
    #: concurrent samples per sampler per round (two samplers: snapshot and base model)
    fanout: int
    #: the longest any one round may take before the run is declared hung
    round_deadline: float


def resident_bytes() -> int:
    """This process's resident set size (Linux ``/proc``; 0 where unavailable)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    import resource

    return pages * resource.getpagesize()


@dataclass
class Ledger:
    """What the workload asked for and what it saw (JSON-able, see :meth:`to_json`)."""

    #: operation name -> how many times the client called it
    calls: Counter[str] = field(default_factory=Counter)
    #: (operation, repr of the exception) of every future that failed
    failures: list[tuple[str, str]] = field(default_factory=list)
    #: operations still unresolved when a round's deadline passed
    hung: list[str] = field(default_factory=list)
    #: operations whose future was not done at the end
    pending: list[str] = field(default_factory=list)
    model_id: str = ""
    probe_model_id: str = ""
    saved_weights: list[str] = field(default_factory=list)
    saved_sampler_weights: list[str] = field(default_factory=list)
    sampling_sessions: list[str] = field(default_factory=list)
    #: the 400 the probe's bad forward_backward got, and what its next valid call got
    probe_rejection: str = ""
    probe_next_call: str = ""
    #: the REST views at the end
    listed_checkpoints: list[str] = field(default_factory=list)
    listed_sessions: int = 0
    #: RSS after the warm-up round, after each later round (bytes)
    rss: list[int] = field(default_factory=list)
    peak_threads: int = 0
    #: threads (other than the main thread) still alive SETTLE_SECONDS after close()
    leaked_threads: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: every future the workload created that is still alive, with its operation name (weak:
    #: the ledger must not keep results alive, or it would be the leak the memory check finds)
    _alive: weakref.WeakKeyDictionary[Future[Any], str] = field(
        default_factory=weakref.WeakKeyDictionary, repr=False
    )

    def track(self, operation: str, future: Future[Any]) -> Future[Any]:
        """Count a call of ``operation`` and keep (weakly) its future."""
        self.calls[operation] += 1
        self._alive[future] = operation
        return future

    def note_pending(self) -> None:
        """Record the operations whose future is not done (a pending future is alive: its
        worker holds it)."""
        self.pending = [op for future, op in list(self._alive.items()) if not future.done()]

    def to_json(self) -> str:
        """One JSON line of every public field."""
        return json.dumps({k: v for k, v in vars(self).items() if not k.startswith("_")})

    @classmethod
    def from_json(cls, line: str) -> Ledger:
        """The ledger :meth:`to_json` wrote."""
        data = json.loads(line)
        data["calls"] = Counter(data["calls"])
        data["failures"] = [tuple(pair) for pair in data["failures"]]
        return cls(**data)


def _settle(ledger: Ledger, started: list[tuple[str, Future[Any]]], deadline: float) -> None:
    """Wait for ``started`` (at most ``deadline`` s); record failures and what hung."""
    _, not_done = concurrent.futures.wait([f for _, f in started], timeout=deadline)
    for operation, future in started:
        if future in not_done:
            ledger.hung.append(operation)
        elif future.exception() is not None:
            ledger.failures.append((operation, repr(future.exception())))


def _probe_rejection_then_valid_call(
    service: tinkex.ServiceClient, ledger: Ledger, deadline: float
) -> None:
    """A training client gets one clean 400, then one valid request (issue 10.4's shape)."""
    probe = service.create_lora_training_client(BASE_MODEL, rank=2, seed=1).result(deadline)
    ledger.probe_model_id = probe.model_id
    rejected = probe.forward_backward(BAD_BATCH, "cross_entropy")
    try:
        rejected.result(deadline)
        ledger.probe_rejection = "accepted"
    except Exception as exc:
        ledger.probe_rejection = repr(exc)
    following = probe.forward_backward(BATCH, "cross_entropy")
    try:
        following.result(deadline)
        ledger.probe_next_call = "ok"
    except Exception as exc:
        ledger.probe_next_call = repr(exc)


def _train(
    trainer: tinkex.TrainingClient, ledger: Ledger, config: SoakConfig
) -> list[tuple[str, Future[Any]]]:
    """Pipelined steps: at most ``pipeline_depth`` steps whose optim_step is unresolved."""
    started: list[tuple[str, Future[Any]]] = []
    in_flight: list[Future[Any]] = []
    for _ in range(config.steps_per_round):
        fwdbwd = ledger.track("forward_backward", trainer.forward_backward(BATCH, "cross_entropy"))
        step = ledger.track("optim_step", trainer.optim_step(ADAM))
        started += [("forward_backward", fwdbwd), ("optim_step", step)]
        in_flight.append(step)
        if len(in_flight) >= config.pipeline_depth:
            concurrent.futures.wait([in_flight.pop(0)], timeout=config.round_deadline)
    return started


def _list_over_rest(
    rest: tinkex.RestClient, ledger: Ledger, model_id: str
) -> list[tuple[str, Future[Any]]]:
    calls = {
        "list_training_runs": rest.list_training_runs(limit=50),
        "get_training_run": rest.get_training_run(model_id),
        "list_checkpoints": rest.list_checkpoints(model_id),
        "list_user_checkpoints": rest.list_user_checkpoints(limit=100),
        "list_sessions": rest.list_sessions(limit=50),
    }
    return [(name, ledger.track(name, future)) for name, future in calls.items()]


def _fan_out(
    samplers: list[tinkex.SamplingClient], ledger: Ledger, config: SoakConfig, round_index: int
) -> list[tuple[str, Future[Any]]]:
    started = []
    for sampler in samplers:
        for i in range(config.fanout):
            prompt = types.ModelInput.from_ints([1 + (round_index * 7 + i) % 250, 42])
            started.append(("sample", ledger.track("sample", sampler.sample(prompt, 1, SAMPLING))))
    return started


def _round(
    index: int,
    trainer: tinkex.TrainingClient,
    samplers: list[tinkex.SamplingClient],
    rest: tinkex.RestClient,
    ledger: Ledger,
    config: SoakConfig,
) -> tinkex.SamplingClient | None:
    """One round (module docstring); returns the snapshot sampler it saved, if it succeeded."""
    started = _fan_out(samplers, ledger, config, index)
    started += _list_over_rest(rest, ledger, trainer.model_id)
    started += _train(trainer, ledger, config)
    weights_name, sampler_name = f"soak-r{index}", f"soak-s{index}"
    saves = {
        "save_state": trainer.save_state(weights_name),
        "save_weights_for_sampler": trainer.save_weights_for_sampler(sampler_name),
        "save_weights_and_get_sampling_client": trainer.save_weights_and_get_sampling_client(),
    }
    ledger.saved_weights.append(weights_name)
    ledger.saved_sampler_weights.append(sampler_name)
    started += [(name, ledger.track(name, future)) for name, future in saves.items()]
    _settle(ledger, started, config.round_deadline)
    ledger.peak_threads = max(ledger.peak_threads, threading.active_count())
    snapshot = saves["save_weights_and_get_sampling_client"]
    if not snapshot.done() or snapshot.exception() is not None:
        return None
    sampler: tinkex.SamplingClient = snapshot.result()
    ledger.sampling_sessions.append(sampler.sampling_session_id)
    return sampler


def _final_listing(rest: tinkex.RestClient, ledger: Ledger, deadline: float) -> None:
    checkpoints = rest.list_checkpoints(ledger.model_id).result(deadline)
    ledger.listed_checkpoints = sorted(c.checkpoint_id for c in checkpoints.checkpoints)
    ledger.listed_sessions = len(rest.list_sessions(limit=100).result(deadline).sessions)


def _threads_left(timeout: float) -> list[str]:
    """Threads other than the main thread still alive after ``timeout`` s (or fewer, if none)."""
    deadline = time.monotonic() + timeout
    while True:
        left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def run_workload(base_url: str, api_key: str, config: SoakConfig) -> Ledger:
    """Run the soak workload (module docstring) and close every client; returns the ledger."""
    ledger = Ledger()
    started_at = time.monotonic()
    deadline = config.round_deadline
    service = tinkex.ServiceClient(base_url=base_url, api_key=api_key)
    rest = tinkex.RestClient(base_url=base_url, api_key=api_key)
    try:
        trainer = service.create_lora_training_client(BASE_MODEL, rank=4, seed=0).result(deadline)
        ledger.model_id = trainer.model_id
        base = service.create_sampling_client(base_model=BASE_MODEL).result(deadline)
        samplers = [base]
        for index in range(config.rounds):
            snapshot = _round(index, trainer, samplers, rest, ledger, config)
            ledger.rss.append(resident_bytes())
            if ledger.hung or snapshot is None:
                break  # a hung or failed round makes the rest meaningless; the tests say why
            samplers = [snapshot, base]
        _final_listing(rest, ledger, deadline)
        _probe_rejection_then_valid_call(service, ledger, deadline)
    finally:
        rest.close()
        service.close()
        ledger.seconds = time.monotonic() - started_at
    ledger.note_pending()
    ledger.leaked_threads = _threads_left(SETTLE_SECONDS)
    return ledger


def main(base_url: str, config_json: str) -> None:
    """``python workload.py BASE_URL CONFIG_JSON``: run, then print the ledger as JSON.

    The client runs in a process of its own, so that its memory and threads are all there is.
    """
    config = SoakConfig(**json.loads(config_json))
    print(run_workload(base_url, "tml-local", config).to_json(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
