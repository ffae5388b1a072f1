"""Structured regularizers: ``loss_total = base_loss + sum(weight_i * regularizer_i)``.

A KL term keeps the fine-tuned model close to the base model (reference logprobs from one
``forward`` pass before training), an entropy term and a hand-written "confidence cap" shape the
token distribution. Each step reports, per regularizer, its value, its contribution to the total
and the norm of its gradient (``track_grad_norms=True``), so you can see which term drives the
update. The structured result is ``output.custom_loss_output``.

Run: python examples/regularizers.py
"""

from __future__ import annotations

import numpy as np
from _server import BASE_MODEL, server

import tinkex as tinker
from tinkex import types
from tinkex.regularizers import Entropy, KLDivergence, RegularizerSpec, numpy_loss

TEXTS = ["Q: Frozen water?\nA: Ice.", "Q: Opposite of up?\nA: Down."]


@numpy_loss(per_datum=True)
def nll(datum: types.Datum, logprobs: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log-likelihood of the targets (the base loss)."""
    return float(-logprobs.sum()), -np.ones_like(logprobs)


def confidence_cap(
    data: list[types.Datum], logprobs_list: list[np.ndarray]
) -> tuple[float, list[np.ndarray]]:
    """A custom regularizer: penalize logprobs above -0.05 (over-confidence)."""
    excess = [np.maximum(lp + 0.05, 0.0) for lp in logprobs_list]
    return float(sum((e**2).sum() for e in excess)), [2.0 * e for e in excess]


def main() -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=8).result()
        tokenizer = training_client.get_tokenizer()
        data = []
        for text in TEXTS:
            tokens = tokenizer.encode(text, add_special_tokens=False)
            data.append(
                types.Datum(
                    model_input=types.ModelInput.from_ints(tokens[:-1]),
                    loss_fn_inputs={"target_tokens": tokens[1:]},
                )
            )
        # Reference logprobs of the untrained model, stored in each datum for the KL term.
        reference = training_client.forward(data, "cross_entropy").result()
        data = [
            types.Datum(
                model_input=d.model_input,
                loss_fn_inputs={**d.loss_fn_inputs, "reference_logprobs": out["logprobs"]},
            )
            for d, out in zip(data, reference.loss_fn_outputs, strict=True)
        ]
        regularizers = [
            KLDivergence(estimator="k3").spec(0.5, name="kl_to_base"),
            Entropy(mode="maximize").spec(0.01),
            RegularizerSpec(confidence_cap, weight=1.0, name="confidence_cap"),
        ]

        print("each regularizer: value (contribution = weight * value, |gradient|)")
        totals = []
        for step in range(12):
            output = training_client.forward_backward_custom(
                data, nll, regularizers=regularizers, track_grad_norms=True
            ).result()
            training_client.optim_step(types.AdamParams(learning_rate=1e-2)).result()
            result = output.custom_loss_output
            totals.append(result.loss_total)
            if step % 3 == 0 or step == 11:
                terms = " | ".join(
                    f"{name} {r.value:.3f} ({r.contribution:+.3f}, |g| {r.grad_norm or 0.0:.3f})"
                    for name, r in result.regularizers.items()
                )
                print(f"step {step:2d} total {result.loss_total:7.3f} nll {result.base_loss:7.3f}")
                print(f"        {terms}")
        print("metrics of the last step:")
        for key, value in sorted(output.metrics.items()):
            print(f"  {key:48s} {value:10.4f}")
        assert totals[-1] < totals[0], "the regularized loss should go down"


if __name__ == "__main__":
    with server():
        main()
