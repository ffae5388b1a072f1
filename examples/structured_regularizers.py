"""Every built-in regularizer and option, offline: the custom-loss pipeline on sample logprobs.

``compute_custom_loss`` is what ``forward_backward_custom`` runs on the logprobs of a forward
pass; here it runs on fixed sample logprobs, so no server is needed. The script composes all
eight built-ins (with their target/center/clip, temperature/normalize, direction/symmetric
options), compares parallel and sequential runs, awaits an async regularizer, reads gradient
norms (tracked and standalone), watches the telemetry events, prints the result as JSON and
shows the errors the pipeline raises.

Run: python examples/structured_regularizers.py
"""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np

from tinkex import telemetry
from tinkex.regularizers import (
    EVENTS,
    L1,
    L2,
    Consistency,
    ElasticNet,
    Entropy,
    Field,
    GradientPenalty,
    KLDivergence,
    Orthogonality,
    RegularizerSpec,
    compute_custom_loss,
    compute_grad_norm,
    grad_norm_for_regularizer,
    numpy_loss,
    total_grad_norm,
)

# Sample target-token logprobs of two datums (as a forward pass returns them), and per datum
# the inputs the regularizers read: a weight mask, reference logprobs (e.g. of the base model),
# paired logprobs (e.g. of an augmented prompt) and advantages.
LOGPROBS = [
    np.array([-0.5, -1.2, -0.8, -2.1, -0.3, -1.5]),
    np.array([-0.9, -1.8, -0.6, -1.1]),
]
DATA = [
    {
        "loss_fn_inputs": {
            "weights": np.array([0.0, 1.0, 1.0, 1.0, 1.0, 1.0]),  # first token is prompt
            "reference_logprobs": np.log([0.55, 0.3, 0.45, 0.15, 0.7, 0.2]),
            "original_logprobs": np.array([-0.45, -1.05, -0.75, -2.05, -0.25, -1.35]),
            "advantages": np.array([0.0, 0.5, 0.5, -0.2, -0.2, 1.0]),
        }
    },
    {
        "loss_fn_inputs": {
            "weights": np.ones(4),
            "reference_logprobs": np.log([0.35, 0.2, 0.5, 0.3]),
            "original_logprobs": np.array([-0.85, -1.65, -0.55, -1.05]),
            "advantages": np.array([0.3, 0.3, -0.1, 0.0]),
        }
    },
]


@numpy_loss(per_datum=True)
def nll(datum: dict, logprobs: np.ndarray) -> tuple[float, np.ndarray, dict[str, float]]:
    """Base loss: negative log-likelihood of the weighted target tokens."""
    w = datum["loss_fn_inputs"]["weights"]
    return float(-(w * logprobs).sum()), -w, {"tokens:sum": float(w.sum())}


REGULARIZERS = [
    L1(target="logprobs", mask_field="weights").spec(0.01, name="l1_sparsity"),
    L1(target="probs", reduction="sum").spec(0.01, name="l1_probs"),
    L2(center="mean", clip=1.0).spec(0.005, name="l2_centered"),
    L2(target=Field("advantages"), reduction="sum").spec(0.001, name="l2_advantages"),
    ElasticNet(l1_ratio=0.6).spec(0.002),
    Entropy(mode="maximize", mask_field="weights").spec(0.001, name="entropy_bonus"),
    Entropy(mode="maximize", temperature=0.5, normalize=True).spec(0.001, name="entropy_sharp"),
    KLDivergence(direction="forward", mask_field="weights").spec(0.01, name="kl_forward"),
    KLDivergence(direction="reverse", mask_field="weights").spec(0.01, name="kl_reverse"),
    KLDivergence(symmetric=True, mask_field="weights").spec(0.01, name="kl_symmetric"),
    Consistency(metric="mse").spec(0.02),
    Orthogonality().spec(0.003),
    # Binds the base loss; nll is linear, so its gradient norm (and the penalty) is constant.
    GradientPenalty(target_norm=1.0).spec(0.001),
]


def show_terms(output) -> None:
    for name, term in output.regularizers.items():
        grad = "" if term.grad_norm is None else f"  |grad| {term.grad_norm:.4f}"
        print(f"  {name:16s} value {term.value:9.4f}  contribution {term.contribution:+.5f}{grad}")


def main() -> None:
    print("1. base loss only")
    baseline, _ = compute_custom_loss(DATA, LOGPROBS, nll)
    print(f"  loss_total {baseline.loss_total:.4f}  metrics {baseline.base_metrics}")

    print(f"2. with {len(REGULARIZERS)} regularizers, gradient norms tracked, in parallel")
    output, grads = compute_custom_loss(
        DATA, LOGPROBS, nll, REGULARIZERS, track_grad_norms=True, parallel=True
    )
    print(
        f"  loss_total {output.loss_total:.4f} = base {output.base_loss:.4f}"
        f" + regularizers {output.regularizer_total:+.5f}"
    )
    show_terms(output)
    print(f"  base |grad| {output.base_grad_norm:.4f}, total |grad| {output.total_grad_norm:.4f}")
    # forward_backward_custom sends weights = -grads[i] in its backward pass.
    print(f"  backward weights of datum 0: {np.round(-grads[0], 3)}")
    assert output.loss_total == output.base_loss + output.regularizer_total
    assert output.regularizers["l2_advantages"].grad_norm == 0.0  # a field: no gradient

    print("3. sequential vs parallel")
    started = time.perf_counter()
    sequential, seq_grads = compute_custom_loss(DATA, LOGPROBS, nll, REGULARIZERS)
    seq_ms = 1000 * (time.perf_counter() - started)
    started = time.perf_counter()
    parallel, par_grads = compute_custom_loss(DATA, LOGPROBS, nll, REGULARIZERS, parallel=True)
    par_ms = 1000 * (time.perf_counter() - started)
    same = np.isclose(sequential.loss_total, parallel.loss_total) and all(
        np.allclose(a, b) for a, b in zip(seq_grads, par_grads, strict=True)
    )
    print(f"  sequential {seq_ms:.1f} ms, parallel {par_ms:.1f} ms, same result: {same}")
    assert same

    print("4. an async regularizer (e.g. a remote reward model)")

    async def remote_penalty(data, logprobs_list):
        await asyncio.sleep(0.01)  # the round trip
        return float(sum(np.abs(lp).mean() for lp in logprobs_list)), [
            np.sign(lp) / lp.size for lp in logprobs_list
        ]

    remote = RegularizerSpec(remote_penalty, 0.02, "remote", async_=True, backend="numpy")
    with_async, _ = compute_custom_loss(DATA, LOGPROBS, nll, [remote], timeout=5)
    print(f"  remote contribution {with_async.regularizers['remote'].contribution:.5f}")

    print("5. one regularizer on its own, and gradient norms without the pipeline")
    value, kl_grads = KLDivergence(symmetric=True)(DATA, LOGPROBS)
    print(f"  symmetric KL {value:.4f}, gradient of datum 0 {np.round(kl_grads[0], 3)}")
    print(f"  |d sum(x)/dx| = {compute_grad_norm(_sum, DATA, LOGPROBS):.4f} (sqrt(10))")
    kl_norm = grad_norm_for_regularizer(REGULARIZERS[7], DATA, LOGPROBS)
    print(
        f"  kl_forward |grad| {kl_norm:.4f} (tracked: "
        f"{output.regularizers['kl_forward'].grad_norm:.4f})"
    )
    total = total_grad_norm(nll, REGULARIZERS, DATA, LOGPROBS)
    print(f"  total |grad| {total:.4f}")
    assert np.isclose(kl_norm, output.regularizers["kl_forward"].grad_norm)
    assert np.isclose(total, output.total_grad_norm)

    print("6. telemetry events")
    events: list[str] = []
    telemetry.attach(
        "example.regularizers",
        EVENTS,
        lambda event, measurements, metadata: events.append(
            f"{event} {metadata.get('name', '')}".strip()
        ),
    )
    try:
        compute_custom_loss(DATA, LOGPROBS, nll, REGULARIZERS[:2])
    finally:
        telemetry.detach("example.regularizers")
    for line in events:
        print(f"  {line}")

    print("7. the result as JSON")
    text = json.dumps(output.to_dict()["regularizers"]["kl_symmetric"], indent=2)
    print("  " + text.replace("\n", "\n  "))

    print("8. errors name the problem")
    duplicate = [L1().spec(0.1), L2().spec(0.1, name="l1")]
    for bad in (
        lambda: compute_custom_loss(DATA, LOGPROBS, nll, duplicate),
        lambda: L2(target=0.5),
        lambda: KLDivergence(reference_field="missing")(DATA, LOGPROBS),
    ):
        try:
            bad()
        except (ValueError, TypeError) as exc:
            print(f"  {type(exc).__name__}: {exc}")
        else:
            raise AssertionError("expected an error")


@numpy_loss
def _sum(data, logprobs_list):
    return float(sum(lp.sum() for lp in logprobs_list)), [np.ones_like(lp) for lp in logprobs_list]


if __name__ == "__main__":
    main()
