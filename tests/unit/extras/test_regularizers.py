"""Built-in regularizers (gradients vs finite differences) and the custom-loss pipeline."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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
    L1(reduction="sum", target=-1.0),
    L2(),
    L2(reduction="sum", mask_field="weights"),
    ElasticNet(l1_ratio=0.3),
    ElasticNet(l1_ratio=0.7, mask_field="weights", reduction="sum"),
    Entropy(),
    Entropy(mode="minimize", mask_field="weights"),
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


@pytest.mark.parametrize("reg", ELEMENTWISE, ids=repr)
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


@pytest.fixture
def events() -> Iterator[list[tuple[str, Mapping[str, float], Mapping[str, Any]]]]:
    seen: list[tuple[str, Mapping[str, float], Mapping[str, Any]]] = []
    telemetry.attach("test-regularizers", "*", lambda e, m, md: seen.append((e, dict(m), dict(md))))
    yield seen
    telemetry.detach("test-regularizers")


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

    reg_events = [md["name"] for e, _, md in emitted if e == telemetry.REGULARIZER_COMPUTE]
    assert reg_events == ["l1", "entropy", "kl"]
    (loss_event,) = [(m, md) for e, m, md in emitted if e == telemetry.CUSTOM_LOSS_COMPUTE]
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
    (meta,) = [md for e, _, md in events if e == telemetry.CUSTOM_LOSS_COMPUTE]
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
