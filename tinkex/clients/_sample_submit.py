"""One attempt of a sample: submit ``asample`` (resent on 429/402), then poll its result.

A ``SamplingClient.sample()`` call becomes a :class:`SampleCall`; each attempt of the client's
retry policy runs :func:`sample_once` (on a worker thread) or :func:`sample_once_async` (a
coroutine on the holder's I/O loop). Both are the same steps, written once in
:class:`Submission`: take the attempt's ``seq_id`` (:class:`SampleSeqIds`), wait out the
holder's 429 back-off, dispatch under the byte budget, resend under
``sample_submission_policy`` (429 without a hint backs off and throttles as the official SDK
does; docs/protocol.md, "Sampling"), poll, and attach ``sample_sequence_ids``. The result is
then checked against the options the request asked for (:meth:`SampleCall.checked`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Protocol, cast

import attrs

from tinkex._exceptions import RateLimitError
from tinkex._futures import QueueState, QueueStateCallback
from tinkex._poll_pacing import PollPacing
from tinkex._poller import apoll_future
from tinkex._transport import NO_RETRY, Response, parse_retry_after
from tinkex._transport.retry import BILLING_PAUSE, RetryPolicy, sample_submission_policy
from tinkex.types import _sampling as smp
from tinkex.types._converter import from_wire
from tinkex.types._session import UntypedAPIFuture

if TYPE_CHECKING:
    from tinkex._transport.aio import AsyncTransport
    from tinkex.clients._holder import ClientHolder
    from tinkex.clients._sample_backoff import SampleBackoff
    from tinkex.clients._session_poller import SessionFuturesPoller

__all__ = [
    "QueueStateObserver",
    "SampleCall",
    "SampleSeqIds",
    "Submission",
    "decode_sample",
    "observer_callback",
    "sample_once",
    "sample_once_async",
    "with_seq_id",
]


class QueueStateObserver(Protocol):
    """An object observing queue states, as ``tinker``'s ``QueueStateObserver`` subclasses."""

    def on_queue_state_change(
        self, queue_state: QueueState, queue_state_reason: str | None
    ) -> None:
        """Called with each queue state the server reports."""


def observer_callback(
    observer: QueueStateCallback | QueueStateObserver | None,
) -> QueueStateCallback | None:
    """``observer`` as a ``(state, reason)`` callable: an object's ``on_queue_state_change``,
    or the callable itself.

    Raises:
        TypeError: ``observer`` is neither.
    """
    if observer is None:
        return None
    method = getattr(observer, "on_queue_state_change", None)
    if callable(method):
        return cast(QueueStateCallback, method)
    if callable(observer):
        return observer
    raise TypeError(
        "queue_state_observer must be a callable (state, reason) or an object with "
        f"on_queue_state_change(state, reason), got {type(observer).__name__}"
    )


#: The 402 pause of asample resends (the policy's; a module name so tests can shorten it).
_BILLING_PAUSE = BILLING_PAUSE
ASAMPLE = "POST /api/v1/asample"
_ASAMPLE_PATH = "/api/v1/asample"
#: x-sdk-method comes from the public method running (tinkex._transport.sdk_method).
_ASAMPLE_HEADERS = {"X-Tinker-Sampling-Backpressure": "1"}


def decode_sample(response: Response) -> smp.SampleResponse:
    """A sample result from a protobuf or JSON answer."""
    if response.is_protobuf:
        from tinkex.types._proto import decode_sample_response

        return decode_sample_response(response.content)
    return from_wire(response.json(), smp.SampleResponse, request="retrieve_future")


def with_seq_id(body: bytes, seq_id: int) -> bytes:
    """The JSON object ``body`` (non-empty) with ``"seq_id"`` added as its last member: the
    bytes of ``{**body, "seq_id": seq_id}`` as the transport encodes it."""
    return b'%s,"seq_id":%d}' % (body[:-1], seq_id)


@attrs.frozen
class SampleCall:
    """One ``sample()`` call: its request body as the JSON bytes the transport would send,
    without ``seq_id`` (each submission adds its own: :func:`with_seq_id`; bytes, not the dict,
    because a dict tree per sample in flight is memory and work for the garbage collector),
    its estimated bytes, the options its result must honour (``prompt_alt_tokens_k``,
    ``prompt_logprobs_last_n``) and its per-call options: ``timeout`` (HTTP read timeout of each
    ``asample`` submission; None: the client's) and ``observer`` (sees the queue states of the
    call's polls)."""

    body: bytes
    nbytes: int
    alt_k: int
    last_n: int | None
    timeout: float | None = None
    observer: QueueStateCallback | None = None

    def queue_state_callback(self, client: QueueStateCallback) -> QueueStateCallback:
        """``client``'s callback, followed by the call's observer when it has one."""
        observer = self.observer
        if observer is None:
            return client

        def both(state: QueueState, reason: str | None) -> None:
            client(state, reason)
            observer(state, reason)

        return both

    def checked(self, result: smp.SampleResponse) -> smp.SampleResponse:
        """``result``, unless the server ignored an option the request asked for."""
        if self.alt_k > 0 and result.prompt_alt_tokens is None:
            raise RuntimeError("the server ignored prompt_alt_tokens_k (no prompt_alt_tokens)")
        if self.last_n is not None and result.prompt_logprobs_np is not None:
            import numpy as np

            logprobs = result.prompt_logprobs_np
            head = logprobs[: max(len(logprobs) - self.last_n, 0)]
            if not np.all(np.isnan(head)):
                raise RuntimeError("the server ignored prompt_logprobs_last_n")
        return result


class SampleSeqIds:
    """The ``seq_id`` of each submission of one sample (docs/protocol.md, "Sequencing").

    A retry of a *failed* sample (its result was lost or failed) is a new request with a new
    ``seq_id``. A submission that got no future back (the connection dropped, a 5xx) may have
    been accepted: it is resent under the same ``seq_id``, so the server recognises the resend
    and answers with the original future instead of running the sample twice (issue 10.1).
    """

    def __init__(self, allocate: Callable[[], int]) -> None:
        self._allocate = allocate
        self._unanswered: int | None = None

    def next(self) -> int:
        """The ``seq_id`` of the next submission."""
        seq_id, self._unanswered = self._unanswered, None
        return self._allocate() if seq_id is None else seq_id

    @contextlib.contextmanager
    def submitting(self, seq_id: int) -> Iterator[None]:
        """Around a submission: when it fails, its ``seq_id`` is the next one again."""
        try:
            yield
        except BaseException:
            self.unanswered(seq_id)
            raise

    def unanswered(self, seq_id: int) -> None:
        """The submission of ``seq_id`` failed: it is the next one again (:meth:`submitting`
        calls this; the coroutine path does directly, holding no generator meanwhile)."""
        self._unanswered = seq_id


class Submission:
    """The steps of one attempt that do not depend on threads or coroutines."""

    def __init__(self, holder: ClientHolder, call: SampleCall, seq_ids: SampleSeqIds) -> None:
        self.seq_id = seq_ids.next()
        self.body = with_seq_id(call.body, self.seq_id)
        self.nbytes = call.nbytes
        self.started = time.monotonic()
        self.billing_allowance = float(
            holder.client_config().billing_exception_max_pause_duration_sec
        )
        self.resend: RetryPolicy = sample_submission_policy(
            self.billing_allowance, billing_pause=_BILLING_PAUSE
        )
        self.backoff: SampleBackoff = holder.sample_backoff()

    def rate_limited(self, exc: RateLimitError) -> None:
        """After a 429: the server's hint is honoured by the transport's rate limiter; without
        one, back off and throttle as the official SDK does."""
        if parse_retry_after(getattr(exc.response, "headers", None)) is None:
            self.backoff.back_off(self.nbytes)

    def accepted(self, response: Response) -> UntypedAPIFuture:
        """The future handle of the submission's answer."""
        return from_wire(response.json(), UntypedAPIFuture, request=ASAMPLE)

    def roundtrip(self) -> float:
        """Seconds since the attempt started (the poller's ``create_roundtrip_time``)."""
        return time.monotonic() - self.started


def sample_once(
    holder: ClientHolder,
    call: SampleCall,
    seq_ids: SampleSeqIds,
    on_queue_state: QueueStateCallback,
) -> smp.SampleResponse:
    """One attempt on the calling (worker) thread; the result with its sequence ids."""
    sub = Submission(holder, call, seq_ids)
    stop = holder.stop_event

    def submit() -> Response:
        sub.backoff.wait(stop)
        try:
            return holder.transport.request(
                "POST",
                _ASAMPLE_PATH,
                content=sub.body,
                headers=_ASAMPLE_HEADERS,
                timeout=call.timeout,
                retry=NO_RETRY,
                stop=stop,
            )
        except RateLimitError as exc:
            sub.rate_limited(exc)
            raise

    with sub.backoff.dispatch(sub.nbytes, holder.sample_bytes()), seq_ids.submitting(sub.seq_id):
        response = sub.resend.run(submit, describe=ASAMPLE, stop_event=stop)
    handle = sub.accepted(response)
    try:
        result = holder.poll(
            handle,
            request_type="Sample",
            decode=decode_sample,
            on_queue_state=call.queue_state_callback(on_queue_state),
            create_roundtrip_time=sub.roundtrip(),
        )
    except CancelledError:
        holder.cancel_sample(handle.request_id)  # abandoned: let the server stop the work
        raise
    return with_sequence_ids(handle, result)


async def sample_once_async(
    holder: ClientHolder,
    aio: AsyncTransport,
    call: SampleCall,
    seq_ids: SampleSeqIds,
    on_queue_state: QueueStateCallback,
    poller: SessionFuturesPoller | None = None,
) -> smp.SampleResponse:
    """:func:`sample_once` as a coroutine on the holder's I/O loop (no thread held).

    With the client's session futures ``poller`` the result is fetched once the session's
    poll reported it done (or, when the session is not polled, polled as without it).
    """
    sub = Submission(holder, call, seq_ids)
    stop = holder.stop_event
    # A partial of a module function, not a closure: one object per sample in flight.
    submit = functools.partial(_submit_async, sub, aio, call, stop)
    # Acquire/release and try/except rather than the context managers of sample_once: a
    # sample waiting for its answer would hold their generators and exits (~6 objects).
    budget = holder.sample_bytes()
    throttled = await sub.backoff.aacquire(sub.nbytes, budget)
    try:
        response = await sub.resend.arun(submit, describe=ASAMPLE, stop_event=stop)
    except BaseException:
        seq_ids.unanswered(sub.seq_id)
        raise
    finally:
        sub.backoff.release(sub.nbytes, budget, throttled)
    handle = sub.accepted(response)
    pacing = holder.settings.poll_pacing
    if poller is not None:
        await _reported_done(poller, handle.request_id, pacing, aio.base_url)
    try:
        result = await apoll_future(
            aio,
            handle.request_id,
            request_type="Sample",
            decode=decode_sample,
            stop=stop,
            on_queue_state=call.queue_state_callback(on_queue_state),
            create_roundtrip_time=sub.roundtrip(),
            response_bytes=holder.response_bytes(),
            billing_max_pause=sub.billing_allowance,
            pacing=pacing,
        )
    finally:
        if poller is not None:
            poller.retrieved(handle.request_id)
    return with_sequence_ids(handle, result)


async def _submit_async(
    sub: Submission, aio: AsyncTransport, call: SampleCall, stop: threading.Event
) -> Response:
    """One ``asample`` submission of ``sub`` (after the holder's 429 back-off window)."""
    await sub.backoff.await_window(stop)
    try:
        return await aio.request(
            "POST", _ASAMPLE_PATH, content=sub.body, headers=_ASAMPLE_HEADERS, timeout=call.timeout
        )
    except RateLimitError as exc:
        sub.rate_limited(exc)
        raise


async def _reported_done(
    poller: SessionFuturesPoller, request_id: str, pacing: PollPacing, server: str
) -> None:
    """Wait for the session poller to report ``request_id`` done, within the pacing's deadline."""
    if pacing.deadline is None:
        await poller.wait(request_id)
        return
    try:
        await asyncio.wait_for(poller.wait(request_id), pacing.deadline)
    except TimeoutError:
        raise pacing.timeout_error(f"{request_id} (Sample)", server) from None


def with_sequence_ids(handle: UntypedAPIFuture, result: smp.SampleResponse) -> smp.SampleResponse:
    """``result`` with the ``sample_sequence_ids`` of its submission answer, when sent.

    ``result`` was just decoded for this request and nothing else refers to it, so its
    (frozen) sequences get their ids in place, as their own ``__init__`` sets fields,
    instead of being rebuilt one by one (a third of the per-sample result handling).
    """
    ids = handle.sample_sequence_ids
    if ids is None:
        return result
    if len(ids) != len(result.sequences):
        # A protocol violation, not a transient failure: resubmitting would not help.
        raise ValueError(
            f"sample request {handle.request_id!r}: the server returned {len(ids)} "
            f"sample_sequence_ids for {len(result.sequences)} sequences"
        )
    for seq, seq_id in zip(result.sequences, ids, strict=True):
        object.__setattr__(seq, "sequence_id", seq_id)
    return result
