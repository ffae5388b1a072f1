"""ModelInputError messages, architecture resolution, and the null model's training path."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from tinkex.local.model import (
    ARCHS,
    LOSS_FUNCTIONS,
    AdamSettings,
    DatumArrays,
    DatumColumns,
    LoraSpec,
    ModelInputError,
    SamplerWeights,
    SampleSettings,
    create_trainable,
    resolve_arch,
    sample,
)

TINY = resolve_arch("tinkex/tiny")
NULL = resolve_arch("tinkex/null")


def _datum(n: int = 5, **inputs: np.ndarray) -> DatumArrays:
    tokens = np.arange(n + 1, dtype=np.int64) + 60
    loss_inputs: dict[str, np.ndarray] = {"target_tokens": tokens[1:].copy(), **inputs}
    return DatumArrays(tokens[:-1].copy(), loss_inputs)


def test_arch_resolution() -> None:
    assert resolve_arch("tinkex/null") is ARCHS["tinkex/null"]
    assert resolve_arch("tinkex/tiny") is ARCHS["tinkex/tiny"]
    assert resolve_arch("meta-llama/Llama-3.1-8B") is ARCHS["tinkex/tiny"]
    assert TINY.vocab_size == 264 and TINY.arch == "tinkex-tiny-transformer"
    assert NULL.arch == "tinkex-null"
    assert LOSS_FUNCTIONS == (
        "cross_entropy",
        "importance_sampling",
        "ppo",
        "cispo",
        "dro",
        "gspo",
        "stable_reinforce",
    )


def test_lora_spec_validation() -> None:
    with pytest.raises(ModelInputError, match="rank"):
        LoraSpec(rank=0)
    with pytest.raises(ModelInputError, match="train_mlp"):
        LoraSpec(rank=4, train_mlp=False, train_attn=False, train_unembed=False)


@pytest.mark.parametrize("arch", [TINY, NULL], ids=["tiny", "null"])
def test_forward_input_errors_name_field_datum_and_value(arch: object) -> None:
    model = create_trainable(arch, LoraSpec(rank=2))  # type: ignore[arg-type]

    def run(data: list[DatumArrays], loss_fn: str = "cross_entropy", config: object = None) -> None:
        model.forward_backward(data, loss_fn, config, forward_only=False)  # type: ignore[arg-type]

    bad_token = _datum()
    bad_token.tokens[2] = 999
    with pytest.raises(ModelInputError, match=r"datum 1: model input tokens\[2\] = 999"):
        run([_datum(), bad_token])
    bad_target = _datum()
    bad_target.loss_inputs["target_tokens"][0] = -1
    with pytest.raises(ModelInputError, match=r"datum 0: target_tokens\[0\] = -1"):
        run([bad_target])
    with pytest.raises(ModelInputError, match=r"datum 0: loss_fn 'ppo' needs .*'advantages'"):
        run([_datum(logprobs=np.zeros(5))], "ppo")
    with pytest.raises(ModelInputError, match=r"datum 0: weights must have shape \(5,\).*\(4,\)"):
        run([_datum(weights=np.ones(4))])
    with pytest.raises(ModelInputError, match="missing 'target_tokens'"):
        run([DatumArrays(np.arange(3), {})])
    with pytest.raises(ModelInputError, match="datum 0: model input is empty"):
        run([DatumArrays(np.zeros(0, np.int64), {"target_tokens": np.zeros(0, np.int64)})])
    with pytest.raises(ModelInputError, match=r"advantages\[1\] = nan is not finite"):
        run([_datum(logprobs=np.zeros(5), advantages=np.array([0, np.nan, 0, 0, 0]))], "ppo")
    with pytest.raises(ModelInputError, match="unknown loss_fn 'hinge'"):
        run([_datum()], "hinge")
    with pytest.raises(ModelInputError, match="key 'clip_ratio' is not accepted by loss_fn 'ppo'"):
        run([_datum()], "ppo", {"clip_ratio": 0.2})
    with pytest.raises(ModelInputError, match="'cross_entropy'"):
        run([_datum()], "cross_entropy", {"beta": 0.1})
    with pytest.raises(ModelInputError, match=r"loss_fn_config\['beta'\] must be a number"):
        run([_datum()], "dro", {"beta": "lots"})


def test_sequence_longer_than_max_seq_len() -> None:
    model = create_trainable(TINY, LoraSpec(rank=2))
    n = TINY.max_seq_len + 1
    datum = DatumArrays(np.zeros(n, np.int64), {"target_tokens": np.zeros(n, np.int64)})
    with pytest.raises(ModelInputError, match=f"{n} tokens, more than max_seq_len 512"):
        model.forward_backward([datum], "cross_entropy", None, forward_only=True)


def test_sample_input_errors() -> None:
    w = SamplerWeights.base(TINY)
    settings = SampleSettings(max_tokens=4)
    with pytest.raises(ModelInputError, match="prompt is empty"):
        sample(w, np.zeros(0, np.int64), 1, settings)
    with pytest.raises(ModelInputError, match=r"prompt\[1\] = 300"):
        sample(w, np.array([1, 300]), 1, settings)
    with pytest.raises(ModelInputError, match="num_samples must be >= 1, got 0"):
        sample(w, np.array([1, 2]), 0, settings)
    with pytest.raises(ModelInputError, match=r"prompt length 500 \+ max_tokens 20 .*max_seq_len"):
        sample(w, np.ones(500, np.int64), 1, SampleSettings(max_tokens=20))
    with pytest.raises(ModelInputError, match="top_p"):
        sample(w, np.array([1]), 1, SampleSettings(top_p=0.0))
    with pytest.raises(ModelInputError, match="temperature"):
        sample(w, np.array([1]), 1, SampleSettings(temperature=-1.0))
    with pytest.raises(ModelInputError, match="not a tinkex/tiny LoRA"):
        SamplerWeights.from_state_dict(TINY, {"layers.9.attn.q.lora_A": np.zeros((64, 2))})


def test_null_model_forward_and_losses() -> None:
    model = create_trainable(NULL, LoraSpec(rank=8))
    weights = np.array([0, 1, 1, 0.5, 1], np.float32)
    result = model.forward_backward(
        [_datum(weights=weights), _datum(3)], "cross_entropy", None, forward_only=False
    )
    constant = -math.log(NULL.vocab_size)
    assert np.allclose(result.outputs[0]["logprobs"], constant)
    assert result.outputs[0]["logprobs"].dtype == np.float32
    np.testing.assert_allclose(result.outputs[0]["elementwise_loss"], -weights * constant)
    assert result.metrics["loss:sum"] == pytest.approx(-(3.5 + 3) * constant)
    adv = np.array([1.0, -1, 2, 0, 1])
    ppo = model.forward_backward(
        [_datum(logprobs=np.full(5, constant), advantages=adv)], "ppo", None, forward_only=True
    )
    np.testing.assert_allclose(ppo.outputs[0]["elementwise_loss"], -adv, rtol=1e-6)
    assert model.optim_step(AdamSettings()) == {"grad_norm:mean": 0.0}
    state = model.state_dict(include_optimizer=True)
    assert state["optimizer.step"].tolist() == [1] and state["tinkex.lora_rank"].tolist() == [8]
    other = create_trainable(NULL, LoraSpec(rank=8))
    other.load_state_dict(state, include_optimizer=True)
    assert other.state_dict(include_optimizer=True)["optimizer.step"].tolist() == [1]
    snapshot = model.sampler_weights()
    assert snapshot.lora_rank == 8
    assert SamplerWeights.from_state_dict(NULL, snapshot.state_dict()).lora_rank == 8


def test_null_model_is_cheap() -> None:
    model = create_trainable(NULL, LoraSpec(rank=32))
    rng = np.random.default_rng(0)
    data = []
    for _ in range(32):
        tokens = rng.integers(0, 256, 65)
        data.append(DatumArrays(tokens[:-1], {"target_tokens": tokens[1:]}))
    best = math.inf
    for _ in range(5):
        start = time.perf_counter()
        model.forward_backward(data, "cross_entropy", None, forward_only=False)
        model.optim_step(AdamSettings())
        best = min(best, time.perf_counter() - start)
    assert best < 0.05


def _columns(data: list[DatumArrays]) -> DatumColumns:
    return DatumColumns(
        np.array([d.tokens.size for d in data], np.int64),
        np.concatenate([d.tokens for d in data]),
        {n: np.concatenate([d.loss_inputs[n] for d in data]) for n in data[0].loss_inputs},
    )


@pytest.mark.parametrize("loss_fn", [fn for fn in LOSS_FUNCTIONS if fn != "stable_reinforce"])
def test_null_model_gives_the_same_result_from_columns(loss_fn: str) -> None:
    rng = np.random.default_rng(5)
    data = []
    for n in (5, 1, 40):
        inputs = {"logprobs": rng.normal(-3, 1, n), "advantages": rng.normal(0, 1, n)}
        if loss_fn == "cross_entropy":
            inputs = {"weights": rng.random(n).astype(np.float32)}
        data.append(_datum(n, **inputs))
    model = create_trainable(NULL, LoraSpec(rank=8))
    per_datum = model.forward_backward(data, loss_fn, None, forward_only=False)
    columns = _columns(data)
    from_columns = model.forward_backward(data, loss_fn, None, forward_only=False, columns=columns)

    assert from_columns.metrics == per_datum.metrics
    assert len(from_columns.outputs) == len(per_datum.outputs)
    for a, b in zip(from_columns.outputs, per_datum.outputs, strict=True):
        assert list(a) == list(b)
        for name in a:
            assert a[name].dtype == b[name].dtype
            np.testing.assert_array_equal(a[name], b[name])
    if loss_fn != "gspo":  # gspo's ratio is per datum: computed per datum
        assert from_columns.columns is not None and from_columns.lengths is not None
        assert from_columns.lengths.tolist() == [5, 1, 40]
        for name, values in from_columns.columns.items():
            np.testing.assert_array_equal(
                values, np.concatenate([o[name] for o in per_datum.outputs])
            )


def test_null_model_names_the_bad_datum_of_columns() -> None:
    data = [_datum(3), _datum(4)]
    data[1].loss_inputs["target_tokens"][2] = NULL.vocab_size
    model = create_trainable(NULL, LoraSpec(rank=8))
    with pytest.raises(ModelInputError, match=r"datum 1: target_tokens\[2\] = .* outside"):
        model.forward_backward(
            data, "cross_entropy", None, forward_only=True, columns=_columns(data)
        )
