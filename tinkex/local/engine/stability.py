"""Stability records: what the server keeps of sequences sampled with ``record_stability_info``.

For every such sequence (by the ``sequence_id`` that ``asample`` handed out) the server keeps
its session, its prompt, its sampled tokens and the sampler's logprob of each of them. A
``stable_reinforce`` request names those sequences in each datum's provenance spans;
:meth:`StabilityRecords.resolve` checks the spans against the records (the tokens must be the
ones that were sampled, in the same session) and turns them into the per-row inputs of the loss:
the sampler's logprob of each target token and which rows are sampled tokens.

As documented for Tinker, a record can be trained on for one day after sampling and each
training request that uses it restarts that day. Records live in memory (a restarted server
has none); beyond ``max_sequences`` the least recently used are dropped. Loop thread only.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from tinkex.local.engine.outcomes import UserError

if TYPE_CHECKING:
    from tinkex.local.codec import Provenance
    from tinkex.types import PromptProvenanceSpan, SampledProvenanceSpan

__all__ = ["DAY", "RecordedSequence", "StabilityRecords"]

DAY = 86_400.0


@dataclass
class RecordedSequence:
    """One sampled sequence as the sampler produced it."""

    sequence_id: str
    session_id: str | None
    prompt: npt.NDArray[np.int64]
    tokens: npt.NDArray[np.int64]
    logprobs: npt.NDArray[np.float64]
    last_used: float


class StabilityRecords:
    """Recorded sequences by id (see the module docstring)."""

    def __init__(self, ttl_seconds: float = DAY, max_sequences: int = 200_000) -> None:
        self.ttl = ttl_seconds
        self.max_sequences = max_sequences
        self._records: OrderedDict[str, RecordedSequence] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    def record(
        self,
        sequence_id: str,
        session_id: str | None,
        prompt: npt.ArrayLike,
        tokens: npt.ArrayLike,
        logprobs: npt.ArrayLike,
    ) -> None:
        """Keep sequence ``sequence_id`` (sampled in ``session_id``) for training."""
        self._records[sequence_id] = RecordedSequence(
            sequence_id=sequence_id,
            session_id=session_id,
            prompt=np.asarray(prompt, dtype=np.int64),
            tokens=np.asarray(tokens, dtype=np.int64),
            logprobs=np.asarray(logprobs, dtype=np.float64),
            last_used=time.time(),
        )
        self._records.move_to_end(sequence_id)
        while len(self._records) > self.max_sequences:
            self._records.popitem(last=False)

    def evict(self, now: float) -> None:
        """Drop records not used for ``ttl`` seconds."""
        stale = [sid for sid, r in self._records.items() if now - r.last_used > self.ttl]
        for sid in stale:
            del self._records[sid]

    def lookup(self, sequence_id: str, session_id: str | None, where: str) -> RecordedSequence:
        """The record of ``sequence_id`` for a request of ``session_id`` (refreshes its day).

        Raises:
            UserError: unknown, unrecorded or expired, or recorded in another session.
        """
        record = self._records.get(sequence_id)
        if record is None or time.time() - record.last_used > self.ttl:
            raise UserError(
                f"{where} names sequence_id {sequence_id!r}, which this server has no stability "
                "record of: sample it with record_stability_info=True (in this session, on this "
                "server run) and train on it within a day of its last use"
            )
        if None not in (record.session_id, session_id) and record.session_id != session_id:
            raise UserError(
                f"{where} names sequence_id {sequence_id!r}, sampled in session "
                f"{record.session_id}, but this model belongs to session {session_id}: "
                "provenance works only within one session"
            )
        record.last_used = time.time()
        self._records.move_to_end(sequence_id)
        return record

    def resolve(
        self,
        where: str,
        provenance: Provenance | None,
        tokens: npt.NDArray[np.int64],
        targets: npt.NDArray[np.int64],
        advantages: npt.NDArray[np.float64] | None,
        session_id: str | None,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``(sampler_logprobs, sampled_mask)`` per loss row of one datum (``where``).

        Checks that the spans tile the model input and the loss rows, that every token they
        cover is the recorded one, and that advantages are zero on rows that are prompt tokens
        (StableReinforce trains sampled tokens only).

        Raises:
            UserError: naming the datum, the span and the sequence id.
        """
        if provenance is None or not provenance.loss_fn_inputs:
            raise UserError(
                f"{where} has no provenance: loss_fn 'stable_reinforce' needs "
                "loss_fn_input_spans naming the sampled sequence behind every target token "
                "(sample with record_stability_info=True, then Datum.with_provenance)"
            )
        self._check_field(f"{where}.model_input", provenance.model_input, tokens, session_id)
        rows = f"{where}.loss_fn_inputs.target_tokens"
        covered = self._check_field(rows, provenance.loss_fn_inputs, targets, session_id)
        logprobs = np.zeros(targets.shape[0], dtype=np.float64)
        sampled = np.zeros(targets.shape[0], dtype=np.float64)
        for start, span, record in covered:
            stop = start + span.length
            if _is_sampled(span):
                logprobs[start:stop] = record.logprobs[span.offset : span.offset + span.length]
                sampled[start:stop] = 1.0
            elif advantages is not None and np.any(advantages[start:stop] != 0):
                position = start + int(np.argmax(advantages[start:stop] != 0))
                raise UserError(
                    f"{where}.loss_fn_inputs.advantages[{position}] = {advantages[position]} is on "
                    f"a prompt token of sequence {span.sequence_id!r}; stable_reinforce accepts "
                    "nonzero advantages only on sampled tokens"
                )
        return logprobs, sampled

    def _check_field(
        self,
        where: str,
        spans: Sequence[PromptProvenanceSpan | SampledProvenanceSpan],
        values: npt.NDArray[np.int64],
        session_id: str | None,
    ) -> list[tuple[int, PromptProvenanceSpan | SampledProvenanceSpan, RecordedSequence]]:
        """Each span with the position it starts at and its record; spans must tile ``values``."""
        total = sum(span.length for span in spans)
        if total != values.shape[0]:
            raise UserError(
                f"{where}: provenance spans cover {total} positions but it has "
                f"{values.shape[0]}; the spans must tile it exactly"
            )
        covered = []
        start = 0
        for index, span in enumerate(spans):
            record = self.lookup(span.sequence_id, session_id, f"{where} span {index}")
            kind = "sampled tokens" if _is_sampled(span) else "prompt"
            source = record.tokens if _is_sampled(span) else record.prompt
            segment = source[span.offset : span.offset + span.length]
            if segment.shape[0] < span.length:
                raise UserError(
                    f"{where} span {index} covers {kind} positions [{span.offset}, "
                    f"{span.offset + span.length}) of sequence {span.sequence_id!r}, which has "
                    f"only {source.shape[0]}"
                )
            mismatch = np.nonzero(values[start : start + span.length] != segment)[0]
            if mismatch.size:
                at = int(mismatch[0])
                raise UserError(
                    f"{where}[{start + at}] = {int(values[start + at])}, but span {index} says it "
                    f"is {kind} position {span.offset + at} of sequence {span.sequence_id!r}, "
                    f"which is {int(segment[at])}"
                )
            covered.append((start, span, record))
            start += span.length
        return covered


def _is_sampled(span: PromptProvenanceSpan | SampledProvenanceSpan) -> bool:
    from tinkex.types import SampledProvenanceSpan

    return isinstance(span, SampledProvenanceSpan)
