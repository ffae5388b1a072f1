"""Tiny transformer training path: gradients (finite differences), losses, AdamW, state."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from tinkex.local.model import (
    AdamSettings,
    DatumArrays,
    LoraSpec,
    ModelInputError,
    SampleSettings,
    TrainableModel,
    create_trainable,
    resolve_arch,
    sample,
)
from tinkex.local.model.losses import STABLE_REINFORCE_TRUNCATION
from tinkex.tokenizer.byte import EOS_ID, ByteTokenizer

TINY = resolve_arch("tinkex/tiny")


def _random_data(rng: np.random.Generator, lengths: tuple[int, ...]) -> list[DatumArrays]:
    data = []
    for n in lengths:
        tokens = rng.integers(0, TINY.vocab_size, n + 1)
        inputs = {
            "target_tokens": tokens[1:],
            "weights": rng.random(n),
            "logprobs": -rng.random(n) * 6,
            "advantages": rng.standard_normal(n),
        }
        data.append(DatumArrays(tokens[:-1], inputs))
    return data


def _perturbed_model(seed: int, dtype: type = np.float64) -> TrainableModel:
    """A rank-3 model whose B matrices are non-zero, so every LoRA path carries gradient."""
    rng = np.random.default_rng(seed)
    model = create_trainable(TINY, LoraSpec(rank=3, seed=seed), dtype=dtype)
    state = model.state_dict(include_optimizer=False)
    for key in state:
        if key.endswith("lora_B"):
            state[key] = rng.standard_normal(state[key].shape) * 0.1
    model.load_state_dict(state, include_optimizer=False)
    return model


def _grads(model: TrainableModel) -> dict[str, np.ndarray]:
    # Read accumulated gradients through the optimizer-free path: a step with lr=0 keeps the
    # weights, so the private buffer is the simplest faithful view for tests.
    return {key: value.copy() for key, value in model._grads.items()}


def _qa_data() -> list[DatumArrays]:
    tok = ByteTokenizer()
    pairs = [("2+2?", "4"), ("Capital of France?", "Paris"), ("Sky?", "blue"), ("Hot?", "cold")]
    data = []
    for question, answer in pairs:
        prompt = tok.encode(question + " ", add_special_tokens=True)
        completion = [*tok.encode(answer), EOS_ID]
        tokens = np.array(prompt + completion)
        weights = np.array([0] * (len(prompt) - 1) + [1] * len(completion), np.float32)
        data.append(DatumArrays(tokens[:-1], {"target_tokens": tokens[1:], "weights": weights}))
    return data


CHECKED_KEYS = (
    "layers.0.attn.q.lora_A",
    "layers.0.attn.k.lora_B",
    "layers.0.attn.v.lora_A",
    "layers.1.attn.o.lora_B",
    "layers.0.mlp.in.lora_A",
    "layers.1.mlp.out.lora_B",
    "unembed.lora_A",
    "unembed.lora_B",
)


#: configs the finite-difference check runs with (default config otherwise)
FD_CONFIGS: dict[str, dict[str, float]] = {"stable_reinforce": {"kl_coeff": 0.3}}


def _with_recorded_sampler(
    rng: np.random.Generator, data: list[DatumArrays], model: TrainableModel
) -> None:
    """stable_reinforce inputs: sampler logprobs near the learner's (so some tokens have a
    ratio above the truncation and some below) and a mix of sampled and prompt rows."""
    ref = model.forward_backward(data, "cross_entropy", None, forward_only=True)
    for datum, out in zip(data, ref.outputs, strict=True):
        lp = out["logprobs"].astype(np.float64)
        datum.loss_inputs["sampler_logprobs"] = lp + rng.normal(0, 0.8, lp.shape)
        mask = (rng.random(lp.shape) < 0.7).astype(np.float64)
        datum.loss_inputs["sampled_mask"] = mask
        datum.loss_inputs["advantages"] = datum.loss_inputs["advantages"] * mask


@pytest.mark.parametrize(
    "loss_fn", ["cross_entropy", "ppo", "importance_sampling", "dro", "stable_reinforce"]
)
def test_gradients_match_finite_differences(loss_fn: str) -> None:
    rng = np.random.default_rng(7)
    data = _random_data(rng, (7, 5, 9))
    model = _perturbed_model(3)
    config = FD_CONFIGS.get(loss_fn)
    if loss_fn == "ppo":
        # sampler logprobs near the learner's, so both clipped and unclipped tokens occur
        ref = model.forward_backward(data, "cross_entropy", None, forward_only=True)
        for datum, out in zip(data, ref.outputs, strict=True):
            noise = rng.normal(0, 0.3, out["logprobs"].shape)
            datum.loss_inputs["logprobs"] = out["logprobs"].astype(np.float64) + noise
    if loss_fn == "stable_reinforce":
        _with_recorded_sampler(rng, data, model)
    model.forward_backward(data, loss_fn, config, forward_only=False)
    analytic = _grads(model)
    state = model.state_dict(include_optimizer=False)
    probe = create_trainable(TINY, LoraSpec(rank=3, seed=3), dtype=np.float64)
    eps = 1e-6
    for key in CHECKED_KEYS:
        for _ in range(2):
            index = tuple(int(rng.integers(0, size)) for size in state[key].shape)
            losses = []
            for sign in (1.0, -1.0):
                shifted = {k: v.copy() for k, v in state.items()}
                shifted[key][index] += sign * eps
                probe.load_state_dict(shifted, include_optimizer=False)
                result = probe.forward_backward(data, loss_fn, config, forward_only=True)
                losses.append(result.metrics["loss:sum"])
            numeric = (losses[0] - losses[1]) / (2 * eps)
            assert analytic[key][index] == pytest.approx(numeric, rel=1e-4, abs=1e-6), (key, index)


def _ratio(data: list[DatumArrays], model: TrainableModel) -> list[np.ndarray]:
    out = model.forward_backward(data, "cross_entropy", None, forward_only=True).outputs
    return [
        np.exp(o["logprobs"].astype(np.float64) - d.loss_inputs["logprobs"])
        for o, d in zip(out, data, strict=True)
    ]


def _ce_with_weights(data: list[DatumArrays], weights: list[np.ndarray]) -> list[DatumArrays]:
    return [
        DatumArrays(d.tokens, {"target_tokens": d.loss_inputs["target_tokens"], "weights": w})
        for d, w in zip(data, weights, strict=True)
    ]


def test_cispo_gradient_is_clipped_ratio_weighted_cross_entropy() -> None:
    # cispo stops the gradient through the ratio, so it is CE with weights clip(r) * A.
    rng = np.random.default_rng(11)
    data = _random_data(rng, (6, 8))
    model = _perturbed_model(4)
    ratios = _ratio(data, model)
    model.forward_backward(data, "cispo", {"clip_low_threshold": 0.5}, forward_only=False)
    cispo = _grads(model)
    weights = [
        np.clip(r, 0.5, 1.2) * d.loss_inputs["advantages"]
        for r, d in zip(ratios, data, strict=True)
    ]
    reference = _perturbed_model(4)
    reference.forward_backward(
        _ce_with_weights(data, weights), "cross_entropy", None, forward_only=False
    )
    for key, value in _grads(reference).items():
        np.testing.assert_allclose(cispo[key], value, rtol=1e-9, atol=1e-12)


def test_gspo_uses_sequence_ratio_with_token_gradients() -> None:
    rng = np.random.default_rng(12)
    data = _random_data(rng, (6,))
    mask = np.array([0, 1, 1, 1, 1, 0], np.float64)
    data[0].loss_inputs["sequence_ratio_mask"] = mask
    model = _perturbed_model(5)
    lp = (
        model.forward_backward(data, "cross_entropy", None, forward_only=True)
        .outputs[0]["logprobs"]
        .astype(np.float64)
    )
    q, adv = data[0].loss_inputs["logprobs"], data[0].loss_inputs["advantages"]
    s = math.exp(np.mean((lp - q)[mask != 0]))
    result = model.forward_backward(data, "gspo", None, forward_only=False)
    expected = -np.minimum(s * adv, np.clip(s, 0.8, 1.2) * adv) * mask
    np.testing.assert_allclose(result.outputs[0]["elementwise_loss"], expected, rtol=1e-5)
    unclipped = (s * adv <= np.clip(s, 0.8, 1.2) * adv) & (mask != 0)
    reference = _perturbed_model(5)
    weights = [np.where(unclipped, s * adv, 0.0)]
    reference.forward_backward(
        _ce_with_weights(data, weights), "cross_entropy", None, forward_only=False
    )
    for key, value in _grads(reference).items():
        # s is recomputed here from float32-rounded logprobs, hence the tolerance
        np.testing.assert_allclose(_grads(model)[key], value, rtol=1e-6, atol=1e-12)


def test_stable_reinforce_is_truncated_importance_weighted_reinforce() -> None:
    # gradient = CE with weights min(r, C) * A - kl (lp - q) on sampled rows, 0 elsewhere;
    # the loss is -A psi(r) + kl/2 (lp - q)^2 (psi(r) = r up to C, then C (1 + log(r / C)))
    rng = np.random.default_rng(21)
    data = _random_data(rng, (6, 9))
    model = _perturbed_model(8)
    _with_recorded_sampler(rng, data, model)
    kl = 0.2
    lps = [
        o["logprobs"].astype(np.float64)
        for o in model.forward_backward(data, "cross_entropy", None, forward_only=True).outputs
    ]
    result = model.forward_backward(data, "stable_reinforce", {"kl_coeff": kl}, forward_only=False)
    cap = STABLE_REINFORCE_TRUNCATION
    weights = []
    truncated = 0
    for datum, lp, out in zip(data, lps, result.outputs, strict=True):
        inputs = datum.loss_inputs
        mask, adv, q = inputs["sampled_mask"], inputs["advantages"], inputs["sampler_logprobs"]
        r = np.exp(lp - q)
        psi = np.where(r <= cap, r, cap * (1 + np.log(r / cap)))
        expected = np.where(mask != 0, -adv * psi + 0.5 * kl * (lp - q) ** 2, 0.0)
        np.testing.assert_allclose(out["elementwise_loss"], expected, rtol=1e-4, atol=1e-5)
        weights.append(np.where(mask != 0, np.minimum(r, cap) * adv - kl * (lp - q), 0.0))
        truncated += int(np.sum((r > cap) & (mask != 0)))
    assert truncated > 0  # the data exercises the truncation
    reference = _perturbed_model(8)
    reference.forward_backward(
        _ce_with_weights(data, weights), "cross_entropy", None, forward_only=False
    )
    for key, value in _grads(reference).items():
        # lp is recomputed from float32-rounded logprobs here, hence the tolerance
        np.testing.assert_allclose(_grads(model)[key], value, rtol=2e-3, atol=1e-6)


def test_stable_reinforce_needs_the_recorded_inputs() -> None:
    rng = np.random.default_rng(22)
    data = _random_data(rng, (4,))
    model = _perturbed_model(9)
    with pytest.raises(ModelInputError, match="'sampler_logprobs'"):
        model.forward_backward(data, "stable_reinforce", None, forward_only=True)
    data[0].loss_inputs["sampler_logprobs"] = np.zeros(4)
    with pytest.raises(ModelInputError, match="'sampled_mask'"):
        model.forward_backward(data, "stable_reinforce", None, forward_only=True)
    data[0].loss_inputs["sampled_mask"] = np.ones(4)
    with pytest.raises(ModelInputError, match=r"'beta' is not accepted by .*'stable_reinforce'"):
        model.forward_backward(data, "stable_reinforce", {"beta": 1.0}, forward_only=True)


def test_loss_values_follow_the_documented_formulas() -> None:
    rng = np.random.default_rng(13)
    data = _random_data(rng, (5,))
    model = _perturbed_model(6)
    inputs = data[0].loss_inputs
    q, adv, w = inputs["logprobs"], inputs["advantages"], inputs["weights"]
    cases: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "cross_entropy": lambda lp: -w * lp,
        "importance_sampling": lambda lp: -np.exp(lp - q) * adv,
        "ppo": lambda lp: (
            -np.minimum(np.exp(lp - q) * adv, np.clip(np.exp(lp - q), 0.8, 1.2) * adv)
        ),
        "cispo": lambda lp: -np.clip(np.exp(lp - q), 0.8, 1.2) * lp * adv,
        "dro": lambda lp: -(lp * adv - 0.5 * 0.05 * (lp - q) ** 2),
    }
    for loss_fn, formula in cases.items():
        result = model.forward_backward(data, loss_fn, None, forward_only=True)
        out = result.outputs[0]
        expected = formula(out["logprobs"].astype(np.float64))
        np.testing.assert_allclose(out["elementwise_loss"], expected, rtol=1e-5, atol=1e-6)
        assert result.metrics["loss:sum"] == pytest.approx(float(expected.sum()), rel=1e-5)
        assert out["logprobs"].dtype == np.float32 and out["elementwise_loss"].dtype == np.float32


def test_cross_entropy_weights_default_to_ones() -> None:
    data = _random_data(np.random.default_rng(14), (6,))
    model = create_trainable(TINY, LoraSpec(rank=2))
    del data[0].loss_inputs["weights"]
    out = model.forward_backward(data, "cross_entropy", None, forward_only=True)
    lp = out.outputs[0]["logprobs"]
    assert out.metrics["loss:sum"] == pytest.approx(-float(lp.sum()), rel=1e-5)
    assert np.all(lp < 0)


def test_batched_varied_lengths_match_one_by_one() -> None:
    rng = np.random.default_rng(15)
    data = _random_data(rng, (3, 40, 41, 120, 12))
    together = _perturbed_model(8, np.float32)
    result = together.forward_backward(data, "cross_entropy", None, forward_only=False)
    alone = _perturbed_model(8, np.float32)
    for datum, out in zip(data, result.outputs, strict=True):
        single = alone.forward_backward([datum], "cross_entropy", None, forward_only=False)
        np.testing.assert_allclose(out["logprobs"], single.outputs[0]["logprobs"], atol=1e-5)
        assert out["logprobs"].shape == (datum.tokens.shape[0],)
    for key, value in _grads(alone).items():
        np.testing.assert_allclose(_grads(together)[key], value, rtol=1e-3, atol=1e-4)


def test_fresh_model_is_the_base_model() -> None:
    data = _random_data(np.random.default_rng(16), (10,))
    a = create_trainable(TINY, LoraSpec(rank=4, seed=1))
    b = create_trainable(TINY, LoraSpec(rank=16, seed=2, train_mlp=False))
    la = a.forward_backward(data, "cross_entropy", None, forward_only=True).outputs[0]["logprobs"]
    lb = b.forward_backward(data, "cross_entropy", None, forward_only=True).outputs[0]["logprobs"]
    np.testing.assert_array_equal(la, lb)


def test_gradients_accumulate_until_optim_step() -> None:
    data = _random_data(np.random.default_rng(17), (6, 9))
    split = _perturbed_model(9, np.float32)
    split.forward_backward(data[:1], "cross_entropy", None, forward_only=False)
    split.forward_backward(data[1:], "cross_entropy", None, forward_only=False)
    split.forward_backward(data, "cross_entropy", None, forward_only=True)  # adds nothing
    joint = _perturbed_model(9, np.float32)
    joint.forward_backward(data, "cross_entropy", None, forward_only=False)
    norm_split = split.optim_step(AdamSettings())["grad_norm:mean"]
    norm_joint = joint.optim_step(AdamSettings())["grad_norm:mean"]
    assert norm_split == pytest.approx(norm_joint, rel=1e-5)
    assert norm_split > 0
    assert split.optim_step(AdamSettings())["grad_norm:mean"] == 0.0  # zeroed by the step


def test_training_reduces_cross_entropy() -> None:
    data = _qa_data()
    model = create_trainable(resolve_arch("Qwen/Qwen3-8B"), LoraSpec(rank=16, seed=0))
    losses = []
    for _ in range(30):
        result = model.forward_backward(data, "cross_entropy", None, forward_only=False)
        losses.append(result.metrics["loss:sum"])
        model.optim_step(AdamSettings(learning_rate=1e-3))
    assert losses[-1] < 0.5 * losses[0]
    assert all(math.isfinite(x) for x in losses)


def test_weight_decay_is_decoupled_and_clipping_reports_raw_norm() -> None:
    model = create_trainable(TINY, LoraSpec(rank=2, seed=1, train_mlp=False, train_attn=False))
    before = model.state_dict(include_optimizer=False)
    metrics = model.optim_step(AdamSettings(learning_rate=0.1, weight_decay=0.5))
    after = model.state_dict(include_optimizer=False)
    # zero gradients: only the decay acts, A shrinks by (1 - lr * wd); B stays 0
    np.testing.assert_allclose(after["unembed.lora_A"], before["unembed.lora_A"] * 0.95, rtol=1e-6)
    assert not np.any(after["unembed.lora_B"])
    assert metrics["grad_norm:mean"] == 0.0
    data = _random_data(np.random.default_rng(18), (8,))
    model.forward_backward(data, "cross_entropy", None, forward_only=False)
    raw = model.optim_step(AdamSettings(grad_clip_norm=1e-3))["grad_norm:mean"]
    assert raw > 1e-3


def test_adam_settings_are_validated() -> None:
    model = create_trainable(TINY, LoraSpec(rank=2))
    with pytest.raises(ModelInputError, match="beta1"):
        model.optim_step(AdamSettings(beta1=1.5))
    with pytest.raises(ModelInputError, match="learning_rate"):
        model.optim_step(AdamSettings(learning_rate=-1.0))


def _train(model: TrainableModel, steps: int) -> None:
    data = _qa_data()
    for _ in range(steps):
        model.forward_backward(data, "cross_entropy", None, forward_only=False)
        model.optim_step(AdamSettings(learning_rate=1e-3))


def test_state_dict_round_trip_restores_weights_and_optimizer() -> None:
    model = create_trainable(TINY, LoraSpec(rank=4, seed=2))
    _train(model, 3)
    state = model.state_dict(include_optimizer=True)
    assert state["optimizer.step"].tolist() == [3]
    assert all(isinstance(k, str) and v.flags.c_contiguous for k, v in state.items())
    restored = create_trainable(TINY, LoraSpec(rank=4, seed=99))
    restored.load_state_dict(state, include_optimizer=True)
    data = _qa_data()
    a = model.forward_backward(data, "cross_entropy", None, forward_only=True)
    b = restored.forward_backward(data, "cross_entropy", None, forward_only=True)
    for x, y in zip(a.outputs, b.outputs, strict=True):
        np.testing.assert_array_equal(x["logprobs"], y["logprobs"])
    # the next step is identical only if Adam moments and step count were restored
    _train(model, 1)
    _train(restored, 1)
    for key, value in model.state_dict(include_optimizer=True).items():
        np.testing.assert_array_equal(restored.state_dict(include_optimizer=True)[key], value)
    weights_only = create_trainable(TINY, LoraSpec(rank=4, seed=2))
    weights_only.load_state_dict(state, include_optimizer=False)  # optimizer entries ignored
    assert weights_only.state_dict(include_optimizer=True)["optimizer.step"].tolist() == [0]


def test_state_dict_is_safetensors_friendly() -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model = create_trainable(TINY, LoraSpec(rank=2))
    _train(model, 1)
    state = model.state_dict(include_optimizer=True)
    loaded = safetensors_numpy.load(safetensors_numpy.save(state))
    other = create_trainable(TINY, LoraSpec(rank=2))
    other.load_state_dict(loaded, include_optimizer=True)
    for key, value in state.items():
        np.testing.assert_array_equal(other.state_dict(include_optimizer=True)[key], value)


def test_load_state_dict_names_the_bad_key() -> None:
    model = create_trainable(TINY, LoraSpec(rank=4))
    state = model.state_dict(include_optimizer=False)
    missing = dict(state)
    del missing["unembed.lora_B"]
    with pytest.raises(ModelInputError, match=r"missing tensor 'unembed\.lora_B'"):
        model.load_state_dict(missing, include_optimizer=False)
    wrong = dict(state, **{"unembed.lora_A": np.zeros((64, 5), np.float32)})
    with pytest.raises(ModelInputError, match=r"'unembed\.lora_A' has shape \(64, 5\)"):
        model.load_state_dict(wrong, include_optimizer=False)
    extra = dict(state, **{"bogus.lora_A": np.zeros(3, np.float32)})
    with pytest.raises(ModelInputError, match="bogus"):
        model.load_state_dict(extra, include_optimizer=False)
    other_rank = create_trainable(TINY, LoraSpec(rank=8)).state_dict(include_optimizer=False)
    with pytest.raises(ModelInputError, match="rank"):
        model.load_state_dict(other_rank, include_optimizer=False)
    with pytest.raises(ModelInputError, match="optimizer"):
        model.load_state_dict(state, include_optimizer=True)
    no_mlp = create_trainable(TINY, LoraSpec(rank=4, train_mlp=False))
    with pytest.raises(ModelInputError, match="mlp"):
        no_mlp.load_state_dict(state, include_optimizer=False)


def test_sampler_snapshot_is_independent_of_later_training() -> None:
    model = create_trainable(TINY, LoraSpec(rank=8))
    _train(model, 2)
    snapshot = model.sampler_weights()
    prompt = np.array(ByteTokenizer().encode("Sky? ", add_special_tokens=True))
    settings = SampleSettings(max_tokens=1)
    _, before = sample(snapshot, prompt, 1, settings, prompt_logprobs=True)
    _train(model, 5)
    _, after = sample(snapshot, prompt, 1, settings, prompt_logprobs=True)
    _, fresh = sample(model.sampler_weights(), prompt, 1, settings, prompt_logprobs=True)
    assert before is not None and after is not None and fresh is not None
    np.testing.assert_array_equal(before.logprobs, after.logprobs)
    assert not np.allclose(fresh.logprobs[1:], before.logprobs[1:])
    assert snapshot.lora_rank == 8
