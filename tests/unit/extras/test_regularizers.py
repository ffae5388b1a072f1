"""Built-in regularizers (gradients vs finite differences) and the custom-loss pipeline."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from tinkex import telemetry
from tinkex.regularizers import (
    L1,
    L2,
    Consistency,
    CustomLossOutput,
    ElasticNet,
    Entropy,
    Field,
    GradientPenalty,
    KLDivergence,
    Orthogonality,
    RegularizerError,
    RegularizerSpec,
    compute_custom_loss,
    numpy_loss,
    torch_loss,
)


@dataclass
class FakeDatum:
    loss_fn_inputs: dict[str, Any] = field(default_factory=dict)


def make_batch(
    seed: int = 0, lengths: Sequence[int] = (5, 3, 7)
) -> tuple[list[FakeDatum], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    logprobs = [-rng.uniform(0.1, 3.0, size=n) for n in lengths]
    data = [
        FakeDatum(
            {
                "weights": (rng.uniform(size=n) > 0.3).astype(np.float64),
                "reference_logprobs": -rng.uniform(0.1, 3.0, size=n),
                "original_logprobs": -rng.uniform(0.1, 3.0, size=n),
                "advantages": np.linspace(-1.0, 2.0, n),
            }
        )
        for n in lengths
    ]
    return data, logprobs


def value_of(out: Any) -> float:
    return float(out[0])


def grads_of(out: Any) -> list[np.ndarray]:
    return list(out[-1])


def numeric_grads(
    fn: Callable[[list[np.ndarray]], float], xs: list[np.ndarray], h: float = 1e-6
) -> list[np.ndarray]:
    grads = []
    for i, x in enumerate(xs):
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            plus = [a.copy() for a in xs]
            minus = [a.copy() for a in xs]
            plus[i][idx] += h
            minus[i][idx] -= h
            g[idx] = (fn(plus) - fn(minus)) / (2 * h)
        grads.append(g)
    return grads


def assert_fd(
    reg: Any,
    data: list[Any],
    xs: list[np.ndarray],
    *,
    h: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> None:
    analytic = grads_of(reg(data, xs))
    numeric = numeric_grads(lambda arrays: value_of(reg(data, arrays)), xs, h)
    assert len(analytic) == len(xs)
    for a, n, x in zip(analytic, numeric, xs, strict=True):
        assert a.shape == x.shape
        np.testing.assert_allclose(a, n, rtol=rtol, atol=atol)


ELEMENTWISE = [
    L1(),
    L1(reduction="sum", center=-1.0),
    L2(),
    L2(reduction="sum", mask_field="weights"),
    ElasticNet(l1_ratio=0.3),
    ElasticNet(l1_ratio=0.7, mask_field="weights", reduction="sum"),
    Entropy(),
    Entropy(mode="maximize", mask_field="weights"),
    KLDivergence(),
    KLDivergence(estimator="k1", reduction="sum"),
    KLDivergence(estimator="k2", mask_field="weights"),
    Consistency(),
    Consistency(metric="l1", reduction="sum"),
    Consistency(metric="cosine"),
    Consistency(metric="cosine", mask_field="weights", reduction="sum"),
    Orthogonality(),
    Orthogonality(normalize=False, reduction="sum"),
    Orthogonality(normalize=False, include_diagonal=True),
]


#: The options of the Elixir adapters: L1/L2/ElasticNet targets and centers, L2 clip, entropy
#: temperature/normalize, KL direction/symmetric.
OPTIONS = [
    L1(target="probs"),
    L1(target="probs", center=0.3, mask_field="weights", reduction="sum"),
    L1(center="mean", mask_field="weights"),
    L2(center="mean"),
    L2(center="mean", mask_field="weights", reduction="sum"),
    L2(clip=0.8),
    L2(center=-1.0, clip=0.5, reduction="sum", mask_field="weights"),
    L2(target="probs", center="mean", clip=0.2),
    ElasticNet(target="probs", l1_ratio=0.4),
    ElasticNet(center="mean", l1_ratio=0.6, mask_field="weights"),
    L2(target=Field("advantages"), center="mean", mask_field="weights"),
    Entropy(temperature=0.5),
    Entropy(temperature=2.0, normalize=True, mask_field="weights"),
    Entropy(mode="maximize", normalize=True, reduction="sum"),
    KLDivergence(direction="reverse"),
    KLDivergence(estimator="k1", direction="reverse", reduction="sum"),
    KLDivergence(estimator="k2", direction="reverse"),
    KLDivergence(symmetric=True),
    KLDivergence(estimator="k1", symmetric=True, mask_field="weights"),
]


@pytest.mark.parametrize("reg", ELEMENTWISE + OPTIONS, ids=repr)
def test_gradient_matches_finite_differences(reg: Any) -> None:
    data, xs = make_batch()
    assert_fd(reg, data, xs)


def test_kl_full_distribution_gradient() -> None:
    rng = np.random.default_rng(3)

    def log_softmax(z: np.ndarray) -> np.ndarray:
        return np.asarray(z - np.log(np.exp(z).sum(-1, keepdims=True)))

    xs = [log_softmax(rng.normal(size=(4, 6))), log_softmax(rng.normal(size=(2, 6)))]
    refs = [log_softmax(rng.normal(size=x.shape)) for x in xs]
    reg = KLDivergence(estimator="full", reference=refs)
    value = value_of(reg([None, None], xs))
    exact = sum(float((np.exp(x) * (x - r)).sum()) for x, r in zip(xs, refs, strict=True)) / 6
    assert value == pytest.approx(exact)  # mean over 6 rows
    assert value > 0
    assert_fd(reg, [None, None], xs)


def log_softmax(z: np.ndarray) -> np.ndarray:
    return np.asarray(z - np.log(np.exp(z).sum(-1, keepdims=True)))


@pytest.mark.parametrize(
    ("direction", "symmetric"), [("forward", False), ("reverse", False), ("forward", True)]
)
def test_kl_full_distribution_directions(direction: str, symmetric: bool) -> None:
    rng = np.random.default_rng(4)
    xs = [log_softmax(rng.normal(size=(3, 5))), log_softmax(rng.normal(size=(2, 5)))]
    refs = [log_softmax(rng.normal(size=x.shape)) for x in xs]
    reg = KLDivergence(
        estimator="full",
        reference=refs,
        direction=direction,  # type: ignore[arg-type]
        symmetric=symmetric,
        reduction="sum",
    )
    forward = sum(float((np.exp(x) * (x - r)).sum()) for x, r in zip(xs, refs, strict=True))
    reverse = sum(float((np.exp(r) * (r - x)).sum()) for x, r in zip(xs, refs, strict=True))
    expected = (
        (forward + reverse) / 2
        if symmetric
        else {"forward": forward, "reverse": reverse}[direction]
    )
    assert value_of(reg([None, None], xs)) == pytest.approx(expected)
    assert_fd(reg, [None, None], xs)


def test_kl_matches_the_elixir_example_values() -> None:
    # P = [0.4, 0.3, 0.2, 0.1] against a uniform Q, as in the NxPenalties documentation.
    p = np.log(np.array([[0.4, 0.3, 0.2, 0.1]]))
    q = np.log(np.full((1, 4), 0.25))
    forward = float(np.sum(np.exp(p) * (p - q)))
    reverse = float(np.sum(np.exp(q) * (q - p)))
    assert forward == pytest.approx(0.1064, abs=1e-4)
    assert reverse == pytest.approx(0.1218, abs=1e-4)
    full = dict(estimator="full", reference=[q])
    assert value_of(KLDivergence(**full)([None], [p])) == pytest.approx(forward)  # type: ignore[arg-type]
    rev = KLDivergence(**full, direction="reverse")  # type: ignore[arg-type]
    assert value_of(rev([None], [p])) == pytest.approx(reverse)
    sym = KLDivergence(**full, symmetric=True, direction="reverse")  # type: ignore[arg-type]
    assert value_of(sym([None], [p])) == pytest.approx((forward + reverse) / 2)


def test_kl_full_ignores_zero_mass_entries() -> None:
    x = np.array([[np.log(0.5), np.log(0.5), -np.inf]])  # no model mass on the last entry
    r = np.log(np.array([[0.25, 0.25, 0.5]]))
    value, grads = KLDivergence(estimator="full", reference=[r])([None], [x])
    assert value == pytest.approx(np.log(2.0))
    assert np.all(np.isfinite(grads[0])) and grads[0][0, 2] == 0.0


@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_sampled_kl_estimators_estimate_the_divergence_they_name(estimator: str) -> None:
    # Draw tokens from the model M; the mean of the per-token estimator is KL in each direction.
    rng = np.random.default_rng(7)
    m = np.array([0.6, 0.2, 0.1, 0.07, 0.03])
    r = np.full(5, 0.2)
    tokens = rng.choice(len(m), size=400_000, p=m)
    x, ref = np.log(m)[tokens], np.log(r)[tokens]
    exact = {
        "forward": float(np.sum(m * np.log(m / r))),
        "reverse": float(np.sum(r * np.log(r / m))),
    }
    for direction in ("forward", "reverse"):
        reg = KLDivergence(estimator=estimator, reference=[ref], direction=direction)  # type: ignore[arg-type]
        assert value_of(reg([None], [x])) == pytest.approx(exact[direction], rel=0.02)
    sym = KLDivergence(estimator=estimator, reference=[ref], symmetric=True)  # type: ignore[arg-type]
    assert value_of(sym([None], [x])) == pytest.approx(sum(exact.values()) / 2, rel=0.02)
    assert exact["reverse"] > 1.08 * exact["forward"]  # the directions really differ


def test_kl_compute_reference_callback() -> None:
    data, xs = make_batch(8)
    calls: list[int] = []

    def reference_of(batch: Sequence[Any]) -> list[np.ndarray]:
        calls.append(len(batch))
        return [d.loss_fn_inputs["original_logprobs"] for d in batch]

    via_callback = KLDivergence(compute_reference=reference_of, direction="reverse")
    explicit = KLDivergence(
        reference=[d.loss_fn_inputs["original_logprobs"] for d in data], direction="reverse"
    )
    from_field = KLDivergence(reference_field="original_logprobs", direction="reverse")
    assert value_of(via_callback(data, xs)) == pytest.approx(value_of(explicit(data, xs)))
    assert value_of(via_callback(data, xs)) == pytest.approx(value_of(from_field(data, xs)))
    assert calls == [3, 3]  # called on every evaluation, with the whole batch
    assert_fd(via_callback, data, xs)
    with pytest.raises(ValueError, match="compute_reference returned 1 arrays for 3 datums"):
        KLDivergence(compute_reference=lambda batch: [np.zeros(5)])(data, xs)
    with pytest.raises(ValueError, match="not both"):
        KLDivergence(reference=[np.zeros(5)], compute_reference=reference_of)
    with pytest.raises(TypeError, match="compute_reference must be callable"):
        KLDivergence(compute_reference=42)  # type: ignore[arg-type]


def test_penalty_targets_center_and_clip_values() -> None:
    data = [FakeDatum({"weights": np.array([1.0, 1.0, 0.0])})]
    xs = [np.array([-1.0, -2.0, -3.0])]
    # The NxPenalties examples, on logprobs: sum((x - mean)**2) = 2; clip 1.5 caps the squares.
    assert value_of(L2(center="mean", reduction="sum")(data, xs)) == pytest.approx(2.0)
    assert value_of(L2(clip=1.5, reduction="sum")(data, xs)) == pytest.approx(1 + 2.25 + 2.25)
    clipped = L2(center="mean", clip=0.5, reduction="sum")(data, xs)
    assert value_of(clipped) == pytest.approx(0.25 + 0.0 + 0.25)
    np.testing.assert_allclose(grads_of(clipped)[0], [0.0, 0.0, 0.0])  # both ends clipped, mean 0
    # A masked center: the mean of the weighted elements only (-1.5 here).
    masked = L2(center="mean", mask_field="weights", reduction="sum")
    assert value_of(masked(data, xs)) == pytest.approx(0.25 + 0.25)
    assert value_of(L2(center=-2.0)(data, xs)) == pytest.approx(2.0 / 3)
    p = np.exp(xs[0])
    assert value_of(L1(target="probs", reduction="sum")(data, xs)) == pytest.approx(p.sum())
    np.testing.assert_allclose(grads_of(L1(target="probs", reduction="sum")(data, xs))[0], p)
    en = ElasticNet(l1_ratio=0.25, target="probs", reduction="sum")
    assert value_of(en(data, xs)) == pytest.approx(float((0.25 * p + 0.75 * p**2).sum()))


def test_field_target_adds_to_the_loss_without_a_gradient() -> None:
    data, xs = make_batch(9)
    advantages = [np.linspace(-1.0, 2.0, x.size) for x in xs]
    for datum, adv in zip(data, advantages, strict=True):
        datum.loss_fn_inputs["advantages"] = adv
    reg = L2(target=Field("advantages"), reduction="sum")
    value, grads = reg(data, xs)
    assert value == pytest.approx(sum(float((a**2).sum()) for a in advantages))
    assert all(not g.any() for g in grads)
    output, total = compute_custom_loss(data, xs, weighted_nll, [reg.spec(0.5)])
    _, base = compute_custom_loss(data, xs, weighted_nll)
    assert output.regularizers["l2"].contribution == pytest.approx(0.5 * value)
    for a, b in zip(total, base, strict=True):
        np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match=r"datum 0 has no loss_fn_inputs\['returns'\]"):
        L1(target=Field("returns"))(data, xs)
    data[0].loss_fn_inputs["advantages"] = np.zeros(2)
    with pytest.raises(ValueError, match="target field 'advantages' for datum 0 has shape"):
        reg(data, xs)


def test_entropy_default_mode_temperature_and_normalize() -> None:
    assert Entropy().mode == "minimize"  # as Elixir Tinkex: the plain value is H
    uniform = np.log(np.full((1, 4), 0.25))
    assert value_of(Entropy()([None], [uniform])) == pytest.approx(np.log(4))
    assert value_of(Entropy(mode="maximize")([None], [uniform])) == pytest.approx(-np.log(4))
    assert value_of(Entropy(normalize=True)([None], [uniform])) == pytest.approx(1.0)
    probs = np.array([[0.7, 0.2, 0.1]])
    for temperature in (0.5, 2.0):
        scaled = probs ** (1 / temperature)
        scaled /= scaled.sum()
        expected = float(-(scaled * np.log(scaled)).sum())
        reg = Entropy(temperature=temperature)
        assert value_of(reg([None], [np.log(probs)])) == pytest.approx(expected)
        assert_fd(reg, [None], [np.log(probs)])
    sharp = value_of(Entropy(temperature=0.5)([None], [np.log(probs)]))
    flat = value_of(Entropy(temperature=2.0)([None], [np.log(probs)]))
    assert sharp < value_of(Entropy()([None], [np.log(probs)])) < flat


def test_entropy_of_full_distributions_averages_rows_and_masks_rows() -> None:
    rng = np.random.default_rng(10)
    rows = log_softmax(rng.normal(size=(3, 6)))
    per_row = -(np.exp(rows) * rows).sum(-1)
    data = [FakeDatum({"weights": np.array([1.0, 0.0, 1.0])})]
    assert value_of(Entropy()(data, [rows])) == pytest.approx(per_row.mean())
    masked = Entropy(mask_field="weights")
    assert value_of(masked(data, [rows])) == pytest.approx((per_row[0] + per_row[2]) / 2)
    assert not grads_of(masked(data, [rows]))[0][1].any()
    for reg in (masked, Entropy(temperature=0.7, normalize=True, mask_field="weights")):
        assert_fd(reg, data, [rows])
    with_inf = np.array([[np.log(0.5), np.log(0.5), -np.inf]])
    value, grads = Entropy()([None], [with_inf])
    assert value == pytest.approx(np.log(2)) and np.all(np.isfinite(grads[0]))


def test_new_options_validate() -> None:
    with pytest.raises(
        ValueError, match=r"target .* got -1.0; to measure around -1.0, pass center"
    ):
        L1(target=-1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"L2\.target must be"):
        L2(target="weights")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"center must be a finite number or 'mean'"):
        L2(center="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"L2\.clip must be a finite number > 0"):
        L2(clip=0.0)
    with pytest.raises(ValueError, match=r"Field\.name"):
        Field("")
    with pytest.raises(ValueError, match=r"Entropy\.temperature must be a finite number > 0"):
        Entropy(temperature=0)
    with pytest.raises(ValueError, match=r"Entropy\.mode must be one of"):
        Entropy(mode="explore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"KLDivergence\.direction must be one of"):
        KLDivergence(direction="backward")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="normalize divides by log"):
        Entropy(normalize=True)([None], [np.array([[-0.1]])])


def test_gradient_penalty_gradient_matches_finite_differences() -> None:
    data, xs = make_batch(1)

    @numpy_loss
    def smooth(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        value = sum(float(np.sum(0.5 * x**2 + np.sin(x))) for x in arrays)
        return value, [x + np.cos(x) for x in arrays]

    reg = GradientPenalty(smooth, target_norm=1.0)
    value, metrics, _ = reg(data, xs)
    norm = np.sqrt(sum(float(np.sum((x + np.cos(x)) ** 2)) for x in xs))
    assert metrics["grad_norm"] == pytest.approx(norm)
    assert value == pytest.approx((norm - 1.0) ** 2)
    assert_fd(reg, data, xs, h=1e-5, rtol=1e-4, atol=1e-6)

    interpolated = GradientPenalty(smooth, mode="interpolated", alpha=0.3, target_norm=0.5)
    assert_fd(interpolated, data, xs, h=1e-5, rtol=1e-4, atol=1e-6)


def test_regularizer_values() -> None:
    data = [
        FakeDatum({"weights": np.array([1.0, 0.0]), "reference_logprobs": np.array([-1.0, -2.0])})
    ]
    xs = [np.array([-0.5, -2.0])]
    assert value_of(L1()(data, xs)) == pytest.approx(1.25)
    assert value_of(L1(mask_field="weights")(data, xs)) == pytest.approx(0.5)
    assert value_of(L2(reduction="sum")(data, xs)) == pytest.approx(4.25)
    p = np.exp(xs[0])
    assert value_of(Entropy(mode="minimize", reduction="sum")(data, xs)) == pytest.approx(
        float(-(p * xs[0]).sum())
    )
    d = np.array([-1.0, -2.0]) - xs[0]
    assert value_of(KLDivergence(reduction="sum")(data, xs)) == pytest.approx(
        float((np.exp(d) - d - 1).sum())
    )
    orthogonal = [np.array([1.0, 0.0]), np.array([0.0, 3.0])]
    assert value_of(Orthogonality()([None, None], orthogonal)) == pytest.approx(0.0)
    parallel = [np.array([1.0, 2.0]), np.array([2.0, 4.0])]
    assert value_of(Orthogonality()([None, None], parallel)) == pytest.approx(1.0)
    assert value_of(Orthogonality()([None], [np.array([1.0])])) == 0.0


def test_builtins_validate_and_explain_missing_inputs() -> None:
    with pytest.raises(ValueError, match="reduction"):
        L1(reduction="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="l1_ratio"):
        ElasticNet(l1_ratio=2)
    with pytest.raises(ValueError, match="estimator"):
        KLDivergence(estimator="k9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"datum 0 has no loss_fn_inputs\['reference_logprobs'\]"):
        KLDivergence()([FakeDatum({"weights": np.ones(2)})], [np.zeros(2)])
    with pytest.raises(ValueError, match=r"shape \(3,\), expected \(2,\)"):
        KLDivergence(reference=[np.zeros(3)])([None], [np.zeros(2)])
    with pytest.raises(ValueError, match="no loss_fn"):
        GradientPenalty()([None], [np.zeros(2)])


def test_dict_datums_and_tensordata_like_inputs() -> None:
    class TensorDataLike:
        def __init__(self, values: list[float]) -> None:
            self.data, self.shape, self.dtype = values, [len(values)], "float32"

    data = [{"loss_fn_inputs": {"reference_logprobs": TensorDataLike([-1.0, -1.0])}}]
    value, grads = KLDivergence(estimator="k1", reduction="sum")(data, [[-0.5, -0.5]])
    assert value == pytest.approx(1.0)
    np.testing.assert_allclose(grads[0], [1.0, 1.0])


# -- pipeline --------------------------------------------------------------------------------


@numpy_loss(per_datum=True)
def weighted_nll(
    datum: FakeDatum, logprobs: np.ndarray
) -> tuple[float, np.ndarray, dict[str, float]]:
    w = datum.loss_fn_inputs["weights"]
    return float(-(w * logprobs).sum()), -w, {"tokens:sum": float(w.sum())}


def test_pipeline_composes_loss_and_gradients(
    events: list[tuple[str, Mapping[str, float], Mapping[str, Any]]],
) -> None:
    data, xs = make_batch(2)
    specs = [
        RegularizerSpec(L1(), 0.01, "l1"),
        Entropy().spec(0.1),
        RegularizerSpec(KLDivergence(), 0.5, "kl"),
    ]
    output, grads = compute_custom_loss(data, xs, weighted_nll, specs, track_grad_norms=True)
    emitted = list(events)
    assert isinstance(output, CustomLossOutput)
    base = sum(
        float(-(d.loss_fn_inputs["weights"] * x).sum()) for d, x in zip(data, xs, strict=True)
    )
    l1 = value_of(L1()(data, xs))
    ent = value_of(Entropy()(data, xs))
    kl = value_of(KLDivergence()(data, xs))
    assert output.base_loss == pytest.approx(base)
    assert output.regularizers["l1"].value == pytest.approx(l1)
    assert output.regularizers["entropy"].contribution == pytest.approx(0.1 * ent)
    assert output.regularizer_total == pytest.approx(0.01 * l1 + 0.1 * ent + 0.5 * kl)
    assert output.loss_total == pytest.approx(base + 0.01 * l1 + 0.1 * ent + 0.5 * kl)
    assert output.loss == output.loss_total
    assert output.base_metrics == {
        "tokens:sum": pytest.approx(sum(float(d.loss_fn_inputs["weights"].sum()) for d in data))
    }

    def total(arrays: list[np.ndarray]) -> float:
        return compute_custom_loss(data, arrays, weighted_nll, specs)[0].loss_total

    for a, n in zip(grads, numeric_grads(total, xs), strict=True):
        np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-7)

    l1_grads = grads_of(L1()(data, xs))
    l1_norm = float(np.sqrt(sum((g**2).sum() for g in l1_grads)))
    assert output.regularizers["l1"].grad_norm == pytest.approx(l1_norm)
    assert output.regularizers["l1"].grad_norm_weighted == pytest.approx(0.01 * l1_norm)
    assert output.total_grad_norm == pytest.approx(float(np.sqrt(sum((g**2).sum() for g in grads))))
    assert output.base_grad_norm == pytest.approx(
        float(np.sqrt(sum((d.loss_fn_inputs["weights"] ** 2).sum() for d in data)))
    )

    reg_events = [md["name"] for e, _, md in emitted if e == telemetry.REGULARIZER_STOP]
    assert reg_events == ["l1", "entropy", "kl"]
    (loss_event,) = [(m, md) for e, m, md in emitted if e == telemetry.CUSTOM_LOSS_STOP]
    assert loss_event[0]["loss_total"] == pytest.approx(output.loss_total)
    assert loss_event[1]["regularizer_count"] == 3 and loss_event[1]["backend"] == "numpy"


def test_to_metrics_keys() -> None:
    data, xs = make_batch()
    output, _ = compute_custom_loss(data, xs, weighted_nll, [L2().spec(1.0)], track_grad_norms=True)
    metrics = output.to_metrics()
    assert metrics["loss:sum"] == output.loss_total
    assert metrics["base_loss:sum"] == output.base_loss
    assert metrics["regularizer/l2:sum"] == output.regularizers["l2"].value
    assert "regularizer/l2/grad_norm:max" in metrics and "total_grad_norm:max" in metrics
    assert metrics["tokens:sum"] == output.base_metrics["tokens:sum"]
    assert all(key.count(":") == 1 for key in metrics)
    assert output.to_dict()["regularizers"]["l2"]["weight"] == 1.0
    untracked, _ = compute_custom_loss(data, xs, weighted_nll, [L2().spec(1.0)])
    assert untracked.total_grad_norm is None and untracked.regularizers["l2"].grad_norm is None
    assert "total_grad_norm:max" not in untracked.to_metrics()


def test_base_only_and_whole_batch_numpy_loss() -> None:
    data, xs = make_batch()

    def raw(
        data: Any, arrays: list[np.ndarray]
    ) -> tuple[float, dict[str, float], list[np.ndarray]]:
        return (
            float(sum(-x.sum() for x in arrays)),
            {"n:sum": 3.0},
            [-np.ones_like(x) for x in arrays],
        )

    output, grads = compute_custom_loss(data, xs, raw, backend="numpy")
    assert output.loss_total == output.base_loss and output.regularizers == {}
    assert output.to_metrics()["loss:sum"] == output.loss_total
    np.testing.assert_allclose(grads[1], -np.ones(3))

    @numpy_loss
    def batch_loss(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        return float(sum((x**2).sum() for x in arrays)), [2 * x for x in arrays]

    output, grads = compute_custom_loss(data, xs, batch_loss)
    np.testing.assert_allclose(grads[0], 2 * xs[0])
    assert batch_loss.__tinkex_backend__ == "numpy"  # type: ignore[attr-defined]


def test_per_datum_metrics_are_reduced_by_their_suffix() -> None:
    data, xs = make_batch(lengths=(2, 4))
    seen: dict[str, list[float]] = {}

    @numpy_loss(per_datum=True)
    def loss(datum: Any, lp: np.ndarray) -> tuple[float, np.ndarray, dict[str, float]]:
        n = float(lp.size)
        metrics = {
            "p:mean": 0.5,
            "len:mean": n,
            "tokens:sum": n,
            "longest:max": n,
            "shortest:min": n,
            "count": 1.0,
        }
        for key, value in metrics.items():
            seen.setdefault(key, []).append(value)
        return float(-lp.sum()), -np.ones_like(lp), metrics

    output, _ = compute_custom_loss(data, xs, loss)
    metrics = output.to_metrics()
    assert metrics["p:mean"] == 0.5  # averaged, not 1.0
    assert metrics["len:mean"] == 3.0
    assert metrics["tokens:sum"] == 6.0
    assert metrics["longest:max"] == 4.0
    assert metrics["shortest:min"] == 2.0
    assert metrics["count"] == 2.0  # no known suffix: summed
    assert seen["p:mean"] == [0.5, 0.5]


def test_parallel_matches_sequential() -> None:
    data, xs = make_batch(4)
    specs = [
        L1().spec(0.1),
        L2().spec(0.2),
        ElasticNet().spec(0.3),
        Consistency().spec(0.4),
        Orthogonality().spec(0.5),
    ]
    seq, seq_grads = compute_custom_loss(data, xs, weighted_nll, specs, track_grad_norms=True)
    par, par_grads = compute_custom_loss(
        data, xs, weighted_nll, specs, track_grad_norms=True, parallel=True, max_workers=3
    )
    assert par.loss_total == pytest.approx(seq.loss_total)
    assert list(par.regularizers) == list(seq.regularizers)  # spec order kept
    for a, b in zip(seq_grads, par_grads, strict=True):
        np.testing.assert_allclose(a, b)


def test_parallel_runs_on_threads() -> None:
    data, xs = make_batch()
    barrier = threading.Barrier(2, timeout=5)

    def waits(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        barrier.wait()  # deadlocks (then times out) unless both run at once
        return 0.0, [np.zeros_like(x) for x in arrays]

    specs = [RegularizerSpec(waits, 1.0, "a"), RegularizerSpec(waits, 1.0, "b")]
    output, _ = compute_custom_loss(data, xs, weighted_nll, specs, parallel=True)
    assert output.regularizer_total == 0.0


def test_async_regularizers_coroutine_and_future() -> None:
    data, xs = make_batch()

    async def slow_l2(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        await asyncio.sleep(0.001)
        return L2()(data, arrays)

    pool = concurrent.futures.ThreadPoolExecutor(1)

    def future_l1(data: Any, arrays: list[np.ndarray]) -> concurrent.futures.Future[Any]:
        return pool.submit(L1(), data, arrays)

    try:
        specs = [
            RegularizerSpec(slow_l2, 0.5, "l2", async_=True),
            RegularizerSpec(future_l1, 0.25, "l1", async_=True),
            Entropy().spec(1.0),
        ]
        output, grads = compute_custom_loss(data, xs, weighted_nll, specs)
    finally:
        pool.shutdown()
    reference, ref_grads = compute_custom_loss(
        data, xs, weighted_nll, [L2().spec(0.5), L1().spec(0.25), Entropy().spec(1.0)]
    )
    assert output.loss_total == pytest.approx(reference.loss_total)
    assert list(output.regularizers) == ["l2", "l1", "entropy"]
    for a, b in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(a, b)


def test_async_regularizer_inside_running_event_loop() -> None:
    data, xs = make_batch()

    async def reg(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        return L2()(data, arrays)

    async def main() -> float:
        output, _ = compute_custom_loss(
            data, xs, weighted_nll, [RegularizerSpec(reg, 1.0, "l2", async_=True)]
        )
        return output.regularizer_total

    assert asyncio.run(main()) == pytest.approx(value_of(L2()(data, xs)))


def test_gradient_penalty_binds_base_loss() -> None:
    data, xs = make_batch()
    output, grads = compute_custom_loss(
        data, xs, weighted_nll, [GradientPenalty(target_norm=0.0).spec(1.0)]
    )
    base_norm = float(np.sqrt(sum((d.loss_fn_inputs["weights"] ** 2).sum() for d in data)))
    assert output.regularizers["gradient_penalty"].value == pytest.approx(base_norm**2)
    # weighted_nll is linear, so its gradient norm does not depend on x: zero penalty gradient.
    _, base_grads = compute_custom_loss(data, xs, weighted_nll)
    for a, b in zip(grads, base_grads, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_pipeline_errors() -> None:
    data, xs = make_batch()
    with pytest.raises(ValueError, match="3 datums but 2 logprobs"):
        compute_custom_loss(data, xs[:2], weighted_nll)
    with pytest.raises(ValueError, match="duplicate regularizer names"):
        compute_custom_loss(data, xs, weighted_nll, [L1().spec(1.0), L2().spec(1.0, name="l1")])
    with pytest.raises(TypeError, match="RegularizerSpec"):
        compute_custom_loss(data, xs, weighted_nll, [L1()])  # type: ignore[list-item]

    def torch_style(data: Any, arrays: list[np.ndarray]) -> tuple[float, dict[str, float]]:
        return 1.0, {}

    with pytest.raises(TypeError, match="torch signature"):
        compute_custom_loss(data, xs, torch_style, backend="numpy")

    def wrong_count(
        data: Any, arrays: list[np.ndarray]
    ) -> tuple[float, dict[str, float], list[np.ndarray]]:
        return 1.0, {}, [np.zeros(5)]

    with pytest.raises(ValueError, match="1 gradients for 3"):
        compute_custom_loss(data, xs, wrong_count, backend="numpy")

    def wrong_shape(
        data: Any, arrays: list[np.ndarray]
    ) -> tuple[float, dict[str, float], list[np.ndarray]]:
        return 1.0, {}, [np.zeros(2) for _ in arrays]

    with pytest.raises(ValueError, match="gradient for datum 0 has shape"):
        compute_custom_loss(data, xs, wrong_shape, backend="numpy")

    def broken(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        raise ZeroDivisionError("oops")

    with pytest.raises(RegularizerError, match="'bad' failed: ZeroDivisionError") as info:
        compute_custom_loss(data, xs, weighted_nll, [RegularizerSpec(broken, 1.0, "bad")])
    assert isinstance(info.value.__cause__, ZeroDivisionError) and info.value.name == "bad"


def test_failure_emits_telemetry(
    events: list[tuple[str, Mapping[str, float], Mapping[str, Any]]],
) -> None:
    data, xs = make_batch()

    def broken(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        raise RuntimeError("nope")

    with pytest.raises(RegularizerError):
        compute_custom_loss(data, xs, weighted_nll, [RegularizerSpec(broken, 1.0, "bad")])
    (meta,) = [md for e, _, md in events if e == telemetry.CUSTOM_LOSS_EXCEPTION]
    assert meta["error_type"] == "RegularizerError"


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="weight"):
        RegularizerSpec(L1(), -1.0, "l1")
    with pytest.raises(ValueError, match="weight"):
        RegularizerSpec(L1(), float("nan"), "l1")
    with pytest.raises(ValueError, match="name"):
        RegularizerSpec(L1(), 1.0, "a:b")
    with pytest.raises(ValueError, match="name"):
        RegularizerSpec(L1(), 1.0, "")
    with pytest.raises(TypeError, match="callable"):
        RegularizerSpec(42, 1.0, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend"):
        RegularizerSpec(L1(), 1.0, "x", backend="jax")  # type: ignore[arg-type]
    spec = RegularizerSpec(L1(), 1, "l1")
    assert spec.weight == 1.0 and spec.async_ is False and spec.backend == "auto"


def test_torch_marker_without_torch_explains() -> None:
    pytest.importorskip("numpy")
    from tinkex.regularizers import torch_available

    if torch_available():
        pytest.skip("torch is installed")

    @torch_loss
    def loss(data: Any, tensors: list[Any]) -> Any:
        return tensors[0].sum()

    data, xs = make_batch()
    with pytest.raises(ImportError, match="torch is not installed"):
        compute_custom_loss(data, xs, loss)


def test_import_is_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, tinkex.regularizers; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- standalone gradient norms ---------------------------------------------------------------


def test_compute_grad_norm_of_numpy_functions() -> None:
    from tinkex.regularizers import compute_grad_norm

    xs = [np.array([-0.5, -1.2, -0.8, -2.1, -0.3]), np.array([-1.5, -0.9, -1.8, -0.6, -1.1])]

    @numpy_loss
    def total(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        return float(sum(a.sum() for a in arrays)), [np.ones_like(a) for a in arrays]

    @numpy_loss
    def squares(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        return float(sum((a**2).sum() for a in arrays)), [2 * a for a in arrays]

    assert compute_grad_norm(total, [None, None], xs) == pytest.approx(np.sqrt(10))  # sqrt(n)
    expected = float(np.sqrt(sum(((2 * a) ** 2).sum() for a in xs)))
    assert compute_grad_norm(squares, [None, None], xs) == pytest.approx(expected)
    data, batch = make_batch()
    assert compute_grad_norm(L1(reduction="sum"), data, batch) == pytest.approx(
        np.sqrt(sum(x.size for x in batch))
    )
    with pytest.raises(ValueError, match="2 datums but 3 logprobs"):
        compute_grad_norm(total, [None, None], batch)


def test_grad_norm_helpers_match_the_pipeline() -> None:
    from tinkex.regularizers import grad_norm_for_regularizer, total_grad_norm

    data, xs = make_batch(11)
    specs = [
        L2(center="mean", clip=1.0).spec(0.3),
        Entropy(temperature=0.5).spec(0.2),
        KLDivergence(symmetric=True).spec(0.1),
    ]
    output, _ = compute_custom_loss(data, xs, weighted_nll, specs, track_grad_norms=True)
    for spec in specs:
        norm = grad_norm_for_regularizer(spec, data, xs)
        assert norm == pytest.approx(output.regularizers[spec.name].grad_norm)
        assert norm > 0
    assert total_grad_norm(weighted_nll, specs, data, xs) == pytest.approx(output.total_grad_norm)

    async def async_l2(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        return L2()(data, arrays)

    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        # Unmarked functions: backend="auto" would pick torch whenever it is installed.
        coroutine = RegularizerSpec(async_l2, 1.0, "l2a", async_=True, backend="numpy")
        future = RegularizerSpec(
            lambda d, a: pool.submit(L2(), d, a), 1.0, "l2f", async_=True, backend="numpy"
        )
        sync_norm = grad_norm_for_regularizer(L2().spec(1.0), data, xs)
        assert grad_norm_for_regularizer(coroutine, data, xs, timeout=5) == pytest.approx(sync_norm)
        assert grad_norm_for_regularizer(future, data, xs, timeout=5) == pytest.approx(sync_norm)
    finally:
        pool.shutdown()

    def broken(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        raise ZeroDivisionError("oops")

    with pytest.raises(RegularizerError, match="'bad' failed: ZeroDivisionError") as info:
        grad_norm_for_regularizer(RegularizerSpec(broken, 1.0, "bad", backend="numpy"), data, xs)
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    with pytest.raises(RegularizerError, match="no loss_fn"):
        grad_norm_for_regularizer(GradientPenalty().spec(1.0), data, xs)


# -- torch (skipped when torch is absent) ---------------------------------------------------


def test_torch_base_loss_and_regularizers() -> None:
    torch = pytest.importorskip("torch")
    data, xs = make_batch(5)

    def official_style(data: Any, logprobs: list[Any]) -> tuple[Any, dict[str, float]]:
        loss = sum(
            -(torch.tensor(d.loss_fn_inputs["weights"]) * lp).sum()
            for d, lp in zip(data, logprobs, strict=True)
        )
        return loss, {"custom:sum": 1.0}

    def torch_l2(data: Any, logprobs: list[Any]) -> Any:
        return sum((lp**2).mean() for lp in logprobs) / len(logprobs)

    specs = [RegularizerSpec(torch_l2, 0.5, "l2t", backend="torch"), L1().spec(0.1)]
    output, grads = compute_custom_loss(
        data, xs, official_style, specs, backend="torch", track_grad_norms=True
    )
    numpy_output, numpy_grads = compute_custom_loss(data, xs, weighted_nll, [L1().spec(0.1)])
    expected_l2 = sum(float((x**2).mean()) for x in xs) / len(xs)
    assert output.regularizers["l2t"].value == pytest.approx(expected_l2, rel=1e-6)
    assert output.base_loss == pytest.approx(numpy_output.base_loss, rel=1e-6)
    assert output.base_metrics == {"custom:sum": 1.0}
    for g, ng, x in zip(grads, numpy_grads, xs, strict=True):
        np.testing.assert_allclose(g, ng + 0.5 * 2 * x / x.size / len(xs), rtol=1e-6, atol=1e-9)


def test_torch_gradient_penalty() -> None:
    torch = pytest.importorskip("torch")
    from tinkex.regularizers import torch_gradient_penalty

    data, xs = make_batch(6)

    def smooth(data: Any, logprobs: list[Any]) -> Any:
        return sum((0.5 * lp**2 + torch.sin(lp)).sum() for lp in logprobs)

    @numpy_loss
    def smooth_np(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        return float(sum((0.5 * x**2 + np.sin(x)).sum() for x in arrays)), [
            x + np.cos(x) for x in arrays
        ]

    spec = RegularizerSpec(torch_gradient_penalty(smooth), 1.0, "gp")
    output, _ = compute_custom_loss(data, xs, smooth_np, [spec])
    numpy_gp = GradientPenalty(smooth_np)(data, xs)
    assert output.regularizers["gp"].value == pytest.approx(numpy_gp[0], rel=1e-6)


def test_functions_get_read_only_inputs_and_caller_arrays_stay_writable() -> None:
    data, xs = make_batch()

    def mutating(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        arrays[0] += 1.0
        return 0.0, [np.zeros_like(x) for x in arrays]

    with pytest.raises(RegularizerError, match="read-only"):
        compute_custom_loss(data, xs, weighted_nll, [RegularizerSpec(mutating, 1.0, "m")])
    xs[0] += 1.0  # the caller's own array is untouched by the pipeline
    output, _ = compute_custom_loss(data, xs, weighted_nll, None)
    assert output.regularizers == {}


def test_gradient_penalty_random_alpha_is_seeded() -> None:
    data, xs = make_batch(7)

    @numpy_loss
    def cubic(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        return float(sum((x**3).sum() for x in arrays)), [3 * x**2 for x in arrays]

    first = GradientPenalty(cubic, mode="interpolated", alpha=None, seed=11)
    second = GradientPenalty(cubic, mode="interpolated", alpha=None, seed=11)
    a, b = first(data, xs), second(data, xs)
    assert a[0] == b[0] and a[1] == b[1]
    assert first(data, xs)[0] != a[0]  # a fresh alpha per call


# -- torch autograd cross-checks of the analytic gradients (skipped when torch is absent) ----


def _torch_formula(reg: Any, data: list[FakeDatum], lps: list[Any]) -> Any:
    """The value of ``reg`` written directly in torch, for autograd to differentiate."""
    torch = pytest.importorskip("torch")

    def weights(shape: tuple[int, ...], datum: FakeDatum) -> Any:
        if reg.mask_field is None:
            return torch.ones(shape, dtype=torch.float64)
        return torch.tensor(datum.loss_fn_inputs[reg.mask_field], dtype=torch.float64)

    def unit_shape(lp: Any) -> tuple[int, ...]:
        rows = isinstance(reg, Entropy) and lp.ndim > 1  # one entropy per row
        return tuple(lp.shape[:-1] if rows else lp.shape)

    ws = [weights(unit_shape(lp), d) for lp, d in zip(lps, data, strict=True)]
    count = sum(w.sum() for w in ws)
    if isinstance(reg, L1 | L2 | ElasticNet):
        if isinstance(reg.target, Field):
            ts = [torch.tensor(d.loss_fn_inputs[reg.target.name]) for d in data]
        else:
            ts = [lp.exp() if reg.target == "probs" else lp for lp in lps]
        center = (
            sum((w * t).sum() for w, t in zip(ws, ts, strict=True)) / count
            if reg.center == "mean"
            else reg.center
        )
        ds = [t - center for t in ts]
        if isinstance(reg, L1):
            phis = [d.abs() for d in ds]
        elif isinstance(reg, L2):
            phis = [(d if reg.clip is None else d.clamp(-reg.clip, reg.clip)) ** 2 for d in ds]
        else:
            phis = [reg.l1_ratio * d.abs() + (1 - reg.l1_ratio) * d**2 for d in ds]
    elif isinstance(reg, Entropy):
        phis = []
        for lp in lps:
            q = lp if reg.temperature == 1.0 else torch.log_softmax(lp / reg.temperature, -1)
            h = -(q.exp() * q)
            h = h if lp.ndim == 1 else h.sum(-1)
            if reg.normalize:
                h = h / np.log(lp.shape[-1])
            phis.append(h if reg.mode == "minimize" else -h)
    elif isinstance(reg, KLDivergence):
        refs = [torch.tensor(d.loss_fn_inputs[reg.reference_field]) for d in data]

        def directed(x: Any, r: Any, direction: str) -> Any:
            log_rho = r - x
            rho = log_rho.exp()
            if reg.estimator == "k2":
                return 0.5 * log_rho**2
            if reg.estimator == "k1":
                return -log_rho if direction == "forward" else rho * log_rho
            if direction == "forward":
                return rho - 1 - log_rho
            return rho * log_rho - (rho - 1)

        def divergence(x: Any, r: Any) -> Any:
            if reg.symmetric:
                return 0.5 * (directed(x, r, "forward") + directed(x, r, "reverse"))
            return directed(x, r, reg.direction)

        phis = [divergence(x, r) for x, r in zip(lps, refs, strict=True)]
    else:
        raise AssertionError(f"no torch formula for {reg!r}")
    total = sum((w * phi).sum() for w, phi in zip(ws, phis, strict=True))
    return total / count if reg.reduction == "mean" else total


_TORCH_CHECKED = [
    r for r in ELEMENTWISE + OPTIONS if not isinstance(r, Consistency | Orthogonality)
]


@pytest.mark.parametrize("reg", _TORCH_CHECKED, ids=repr)
def test_analytic_gradients_match_torch_autograd(reg: Any) -> None:
    torch = pytest.importorskip("torch")
    data, xs = make_batch(12)
    value, grads = reg(data, xs)[0], grads_of(reg(data, xs))
    tensors = [torch.tensor(x, requires_grad=True) for x in xs]
    expected = _torch_formula(reg, data, tensors)
    if expected.requires_grad:  # a Field target does not depend on the logprobs
        expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-10)
    for g, t in zip(grads, tensors, strict=True):
        autograd = np.zeros(tuple(t.shape)) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(g, autograd, rtol=1e-9, atol=1e-12)


def test_entropy_of_full_distributions_matches_torch_autograd() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(13)
    rows = [log_softmax(rng.normal(size=(4, 7))), log_softmax(rng.normal(size=(2, 7)))]
    data = [FakeDatum({"weights": np.array([1.0, 0.0, 1.0, 1.0])}), FakeDatum({"weights": [1, 1]})]
    for reg in (
        Entropy(temperature=0.6, normalize=True, mask_field="weights"),
        Entropy(mode="maximize", temperature=1.7, reduction="sum"),
    ):
        tensors = [torch.tensor(x, requires_grad=True) for x in rows]
        expected = _torch_formula(reg, data, tensors)
        expected.backward()
        value, grads = reg(data, rows)
        assert value == pytest.approx(expected.item(), rel=1e-10)
        for g, t in zip(grads, tensors, strict=True):
            np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_grad_norm_helpers_with_torch_functions() -> None:
    torch = pytest.importorskip("torch")
    from tinkex.regularizers import compute_grad_norm, grad_norm_for_regularizer, total_grad_norm

    data, xs = make_batch(14)

    def torch_squares(data: Any, logprobs: list[Any]) -> Any:
        return sum((lp**2).sum() for lp in logprobs)

    expected = float(np.sqrt(sum(((2 * x) ** 2).sum() for x in xs)))
    assert compute_grad_norm(torch_squares, data, xs) == pytest.approx(expected)  # auto: torch
    assert compute_grad_norm(torch_squares, data, xs, backend="torch") == pytest.approx(expected)
    spec = RegularizerSpec(torch_squares, 0.5, "sq", backend="torch")
    assert grad_norm_for_regularizer(spec, data, xs) == pytest.approx(expected)

    def official_style(data: Any, logprobs: list[Any]) -> tuple[Any, dict[str, float]]:
        w = [torch.tensor(d.loss_fn_inputs["weights"]) for d in data]
        return sum(-(wi * lp).sum() for wi, lp in zip(w, logprobs, strict=True)), {}

    specs = [spec, L2(center="mean", clip=1.0).spec(0.3), Entropy(temperature=0.5).spec(0.2)]
    output, grads = compute_custom_loss(
        data, xs, official_style, specs, track_grad_norms=True, backend="torch"
    )
    numpy_output, numpy_grads = compute_custom_loss(
        data, xs, weighted_nll, [RegularizerSpec(_numpy_squares, 0.5, "sq"), *specs[1:]]
    )
    # The torch side computes in torch's default dtype (float32, as the official SDK hands a
    # loss), the numpy side in float64: they agree to float32 precision.
    assert output.loss_total == pytest.approx(numpy_output.loss_total, rel=1e-6)
    for a, b in zip(grads, numpy_grads, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    assert total_grad_norm(official_style, specs, data, xs) == pytest.approx(
        float(np.sqrt(sum((g**2).sum() for g in grads)))
    )


@numpy_loss
def _numpy_squares(data: Any, arrays: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    return float(sum((a**2).sum() for a in arrays)), [2 * a for a in arrays]
