"""One ``forward_backward_custom`` call as a small step object (docs/protocol.md, "Custom losses").

The server knows only its built-in losses, so a custom loss takes two passes over the same
chunks: a forward pass gives the per-token logprobs, the client computes the loss and its
gradient (``tinkex.regularizers.compute_custom_loss``), and a cross-entropy backward pass with
``weights = -gradient`` makes the server apply exactly that gradient. :class:`CustomLossStep`
holds what the passes share — the batch, its chunk boundaries, the loss output — so the
training client only queues :meth:`~CustomLossStep.send` (in seq-id order) and runs
:meth:`~CustomLossStep.finish` when the backward chunks are in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from tinkex._transport.estimates import estimate_datum_bytes
from tinkex.clients._chunking import Chunk, chunk_datums, combine_outputs
from tinkex.types import _training as tr
from tinkex.types._datum import Datum

if TYPE_CHECKING:
    from tinkex.regularizers import CustomLossOutput, RegularizerSpec

__all__ = ["CustomLossStep", "SendChunk", "PollChunk"]

#: ``send(data, nbytes, loss_input, seq_id, forward_only) -> sent``: submit one chunk.
SendChunk = Callable[[list[Datum], int, tr.ForwardBackwardInput, int, bool], Any]
#: ``poll(sent, request_type) -> output``: the result of a submitted chunk.
PollChunk = Callable[[Any, str], tr.ForwardBackwardOutput]


@attrs.define
class CustomLossStep:
    """The two passes of one custom-loss training step, and what they share.

    Build it with :meth:`prepare`; it needs ``seq_ids`` consecutive ``seq_id``s, forward
    chunks first, so later calls queue behind both passes.

    Attributes:
        data: the caller's batch (the loss function sees it as given).
        loss_fn: the loss (numpy or torch; see ``compute_custom_loss``).
        regularizers: added to the loss (tinkex extra).
        track_grad_norms: record gradient norms in the output (tinkex extra).
        forward_data: the batch with only ``target_tokens`` and ``weights`` as loss inputs.
        chunks: the chunk boundaries, shared by both passes.
        output: the loss output, set once the forward pass is done.
    """

    data: list[Datum]
    loss_fn: Callable[..., Any]
    regularizers: Sequence[RegularizerSpec] | None
    track_grad_norms: bool
    forward_data: list[Datum]
    chunks: list[Chunk]
    output: CustomLossOutput | None = None

    @classmethod
    def prepare(
        cls,
        data: Sequence[Datum],
        loss_fn: Callable[..., Any],
        *,
        regularizers: Sequence[RegularizerSpec] | None,
        track_grad_norms: bool,
        max_chunk_len: int,
        max_chunk_bytes: int,
    ) -> CustomLossStep:
        """Check the batch and split it into chunks.

        Raises:
            ValueError: ``data`` is empty, or a datum has no ``target_tokens``.
        """
        batch = list(data)
        if not batch:
            raise ValueError("No data provided: forward_backward_custom needs at least one Datum")
        for i, datum in enumerate(batch):
            if "target_tokens" not in datum.loss_fn_inputs:
                raise ValueError(f"data[{i}].loss_fn_inputs has no 'target_tokens'")
        forward_data = [_forward_datum(d) for d in batch]
        chunks = chunk_datums(forward_data, max_chunk_len, max_chunk_bytes)
        return cls(batch, loss_fn, regularizers, track_grad_norms, forward_data, chunks)

    @property
    def seq_ids(self) -> int:
        """``seq_id``s the step consumes: one per chunk and pass."""
        return 2 * len(self.chunks)

    @property
    def _loss_input(self) -> tr.ForwardBackwardInput:
        return tr.ForwardBackwardInput(data=self.forward_data, loss_fn="cross_entropy")

    def send(self, first_seq: int, send: SendChunk, poll: PollChunk) -> list[Any]:
        """Run the forward pass, compute the loss, submit the backward chunks.

        Returns the submitted backward chunks (for :meth:`finish`) once they are sent.
        """
        loss_input = self._loss_input
        forward = [
            send(chunk.data, chunk.nbytes, loss_input, first_seq + i, True)
            for i, chunk in enumerate(self.chunks)
        ]
        logprobs = [
            out["logprobs"].to_numpy()
            for result in (poll(sent, "Forward") for sent in forward)
            for out in result.loss_fn_outputs
        ]
        from tinkex.regularizers import compute_custom_loss

        self.output, grads = compute_custom_loss(
            self.data,
            logprobs,
            self.loss_fn,
            self.regularizers,
            track_grad_norms=self.track_grad_norms,
        )
        backward_data = [
            _backward_datum(datum, grad)
            for datum, grad in zip(self.forward_data, grads, strict=True)
        ]
        sent_backward = []
        offset = len(self.chunks)
        start = 0
        for i, chunk in enumerate(self.chunks):
            part = backward_data[start : start + len(chunk.data)]
            start += len(chunk.data)
            nbytes = sum(estimate_datum_bytes(d) for d in part)
            sent_backward.append(send(part, nbytes, loss_input, first_seq + offset + i, False))
        return sent_backward

    def finish(self, sent: list[Any], poll: PollChunk) -> tr.ForwardBackwardOutput:
        """The backward result with the custom loss's metrics, as tinker 0.38 returns them.

        The server's backward metrics without its cross-entropy ``loss:sum``, then the loss
        function's metrics, ``loss:sum`` (the custom loss) and ``surrogate_loss:sum`` (the
        server's ``loss:sum``). With regularizers or ``track_grad_norms`` (tinkex extras) the
        loss output's other metrics (``base_loss:sum``, ``regularizer/...``) come before
        ``loss:sum``.

        Raises:
            KeyError: the server's backward result has no ``loss:sum``.
        """
        outputs = [poll(item, "ForwardBackward") for item in sent]
        combined = combine_outputs(outputs, [len(c.data) for c in self.chunks])
        metrics = dict(combined.metrics)
        if "loss:sum" not in metrics:
            raise KeyError("the server's backward result has no 'loss:sum' metric")
        surrogate_loss = metrics.pop("loss:sum")
        output = self.output
        if output is None:  # finish() runs only after send() succeeded
            raise RuntimeError("CustomLossStep.finish called before send")
        extras = self.regularizers or self.track_grad_norms
        metrics.update(output.to_metrics() if extras else output.base_metrics)
        metrics["loss:sum"] = float(output.loss_total)
        metrics["surrogate_loss:sum"] = surrogate_loss
        return tr.ForwardBackwardOutput(
            loss_fn_output_type=combined.loss_fn_output_type,
            loss_fn_outputs=combined.loss_fn_outputs,
            metrics=metrics,
            custom_loss_output=output,
        )


def _forward_datum(datum: Datum) -> Datum:
    import numpy as np

    targets = datum.loss_fn_inputs["target_tokens"]
    weights = datum.loss_fn_inputs.get("weights")
    if weights is None:
        from tinkex.types import TensorData

        weights = TensorData.from_numpy(np.zeros(targets.to_numpy().shape, dtype=np.float32))
    return Datum(
        model_input=datum.model_input,
        loss_fn_inputs={"target_tokens": targets, "weights": weights},
        model_input_spans=datum.model_input_spans,
        loss_fn_input_spans=datum.loss_fn_input_spans,
    )


def _backward_datum(datum: Datum, grad: Any) -> Datum:
    """``datum`` with ``weights = -grad``: cross-entropy then has the custom loss's gradient."""
    import numpy as np

    from tinkex.types import TensorData

    weights = TensorData.from_numpy(-np.asarray(grad, dtype=np.float32))
    return Datum(
        model_input=datum.model_input,
        loss_fn_inputs={"target_tokens": datum.loss_fn_inputs["target_tokens"], "weights": weights},
        model_input_spans=datum.model_input_spans,
        loss_fn_input_spans=datum.loss_fn_input_spans,
    )
