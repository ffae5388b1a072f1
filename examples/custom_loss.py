"""A custom loss computed client-side with ``forward_backward_custom`` (numpy, no torch).

The loss here is a *focal* negative log-likelihood: tokens the model already predicts well get
less weight, ``loss = -sum((1 - p)**gamma * log p)``. A forward pass returns the per-token
logprobs, this script computes the loss and its gradient with respect to them, and tinkex sends
the gradient back for the backward pass. First we check the machinery: a plain numpy NLL gives
the same number as the server's built-in ``cross_entropy``.

Run: python examples/custom_loss.py
"""

from __future__ import annotations

import numpy as np
from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types
from tinkex.regularizers import numpy_loss

GAMMA = 2.0
TEXTS = ["Q: Capital of France?\nA: Paris.", "Q: Capital of Japan?\nA: Tokyo."]


def make_datum(tokenizer: object, text: str) -> types.Datum:
    tokens = tokenizer.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
    )


@numpy_loss(per_datum=True)
def nll(datum: types.Datum, logprobs: np.ndarray) -> tuple[float, np.ndarray]:
    """Plain negative log-likelihood: what cross_entropy computes on the server."""
    weights = datum.loss_fn_inputs["weights"].to_numpy()
    return float(-(weights * logprobs).sum()), -weights


@numpy_loss(per_datum=True)
def focal_nll(
    datum: types.Datum, logprobs: np.ndarray
) -> tuple[float, np.ndarray, dict[str, float]]:
    """``-sum((1 - p)^gamma * log p)`` and its analytic gradient d loss / d logprobs."""
    p = np.exp(logprobs)
    focus = (1.0 - p) ** GAMMA
    loss = float(-(focus * logprobs).sum())
    # d/dlp [-(1 - e^lp)^g * lp] = -(1 - p)^g + g * (1 - p)^(g - 1) * p * lp
    grad = -focus + GAMMA * (1.0 - p) ** (GAMMA - 1.0) * p * logprobs
    return loss, grad, {"confident_tokens:sum": float((p > 0.5).sum())}


def main() -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=8).result()
        tokenizer = training_client.get_tokenizer()
        data = [make_datum(tokenizer, text) for text in TEXTS]
        n_tokens = sum(d.model_input.length for d in data)

        builtin = training_client.forward(data, "cross_entropy").result().metrics["loss:sum"]
        custom = training_client.forward_backward_custom(data, nll).result().metrics["loss:sum"]
        print(f"built-in cross_entropy {builtin:.4f} == numpy NLL {custom:.4f}")
        assert abs(builtin - custom) < 1e-3 * max(1.0, abs(builtin))
        # That call accumulated gradients; apply them so every step below starts clean.
        training_client.optim_step(types.AdamParams(learning_rate=1e-2)).result()

        losses = []
        for step in range(15):
            output = training_client.forward_backward_custom(data, focal_nll).result()
            training_client.optim_step(types.AdamParams(learning_rate=1e-2)).result()
            losses.append(output.metrics["loss:sum"])
            if step % 5 == 0 or step == 14:
                print(
                    f"step {step:2d}  focal loss {losses[-1]:8.3f}  "
                    f"p > 0.5 on {output.metrics['confident_tokens:sum']:.0f}/{n_tokens} tokens  "
                    f"(surrogate sent to the server {output.metrics['surrogate_loss:sum']:.3f})"
                )
        assert losses[-1] < losses[0], "the focal loss should go down"


if __name__ == "__main__":
    with server():
        main()
