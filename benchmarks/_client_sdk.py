"""The workloads through an SDK's public API: the same code for ``tinkex`` and ``tinker``.

Only the package name differs, so the figures compare the two SDKs, not two programs. Nothing
here imports the SDK (or numpy) at module level: the ``cold`` workload times those imports.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib
import time
from types import ModuleType
from typing import Any

from _clientlib import (
    MAX_TOKENS,
    NULL_MODEL,
    PROMPT_TOKENS,
    TRAIN_VOCAB,
    Window,
    cold_fwdbwd_lists,
)


def run(args: argparse.Namespace, window: Window) -> dict[str, Any]:
    """Run ``args.workload`` with package ``args.sdk``; returns the workload's fields."""
    if args.workload == "cold":
        return _cold(args, window)
    if args.workload == "cold_fwdbwd":
        return _cold_fwdbwd(args, window)
    sdk, types = _import(args.sdk)
    service = sdk.ServiceClient()
    try:
        if args.workload == "sample":
            return _sample(sdk, types, service, args, window)
        return _fwdbwd(types, service, args, window)
    finally:
        service.close("success").result(timeout=60)


def _import(name: str) -> tuple[ModuleType, ModuleType]:
    return importlib.import_module(name), importlib.import_module(name + ".types")


def _sampler(service: Any) -> Any:
    sampler = service.create_sampling_client(base_model=NULL_MODEL)
    # some SDK versions hand back a future of the client
    return sampler.result() if hasattr(sampler, "result") else sampler


def _sample_call(types: ModuleType, sampler: Any) -> Any:
    prompt = types.ModelInput.from_ints(PROMPT_TOKENS)
    params = types.SamplingParams(max_tokens=MAX_TOKENS, temperature=1.0, seed=1)
    return sampler.sample(prompt=prompt, num_samples=1, sampling_params=params)


def _check_sample(response: Any) -> None:
    tokens = response.sequences[0].tokens
    if len(response.sequences) != 1 or not 0 < len(tokens) <= MAX_TOKENS:
        raise RuntimeError(f"unexpected sample response: {response!r}")


def _sample(
    sdk: ModuleType, types: ModuleType, service: Any, args: argparse.Namespace, window: Window
) -> dict[str, Any]:
    sampler = _sampler(service)
    _check_sample(_sample_call(types, sampler).result(timeout=args.timeout))  # warm-up
    with window.measure():
        futures = [_sample_call(types, sampler) for _ in range(args.samples)]
        done, not_done = concurrent.futures.wait(futures, timeout=args.timeout)
    failures = len(not_done)
    first_error = "" if not not_done else f"{len(not_done)} not done after {args.timeout} s"
    for future in done:
        try:
            _check_sample(future.result())
        except Exception as exc:
            failures += 1
            first_error = first_error or repr(exc)
    for future in not_done:
        future.cancel()
    return {
        "count": args.samples,
        "failures": failures,
        "first_error": first_error,
        "version": sdk.__version__,
    }


def _training_client(service: Any) -> Any:
    training = service.create_lora_training_client(base_model=NULL_MODEL, rank=8)
    # 0.38 hands back a future of the client; using it as the client works but warns on
    # every call, which is not what is measured.
    return training.result() if hasattr(training, "result") else training


def _fwdbwd(
    types: ModuleType, service: Any, args: argparse.Namespace, window: Window
) -> dict[str, Any]:
    import numpy as np

    training = _training_client(service)
    rng = np.random.default_rng(0)

    def datum(tokens: int) -> Any:
        sequence = rng.integers(0, TRAIN_VOCAB, size=tokens + 1, dtype=np.int64)
        return types.Datum(
            model_input=types.ModelInput.from_ints(sequence[:-1].tolist()),
            loss_fn_inputs={
                "target_tokens": types.TensorData.from_numpy(sequence[1:]),
                "weights": types.TensorData.from_numpy(np.ones(tokens, dtype=np.float32)),
            },
        )

    training.forward_backward([datum(8)], "cross_entropy").result(timeout=args.timeout)
    batch = [datum(args.tokens) for _ in range(args.batch)]
    step_seconds = []
    with window.measure():
        for _ in range(args.steps):
            start = time.perf_counter()
            output = training.forward_backward(batch, "cross_entropy").result(timeout=args.timeout)
            step_seconds.append(time.perf_counter() - start)
            if len(output.loss_fn_outputs) != args.batch:
                raise RuntimeError(
                    f"forward_backward returned {len(output.loss_fn_outputs)} outputs "
                    f"for {args.batch} datums"
                )
    return {
        "count": args.steps,
        "failures": 0,
        "tokens": args.batch * args.tokens,
        "step_s": step_seconds,
    }


def _cold(args: argparse.Namespace, window: Window) -> dict[str, Any]:
    with window.measure():
        start = time.perf_counter()
        sdk, types = _import(args.sdk)
        imported = time.perf_counter()
        service = sdk.ServiceClient()
        sampler = _sampler(service)
        ready = time.perf_counter()
        _check_sample(_sample_call(types, sampler).result(timeout=args.timeout))
        sampled = time.perf_counter()
    service.close("success").result(timeout=60)
    return {
        "count": 1,
        "failures": 0,
        "import_s": imported - start,
        "setup_s": ready - imported,
        "first_sample_s": sampled - ready,
    }


def _cold_fwdbwd(args: argparse.Namespace, window: Window) -> dict[str, Any]:
    lists = cold_fwdbwd_lists()
    with window.measure():
        start = time.perf_counter()
        sdk, types = _import(args.sdk)
        imported = time.perf_counter()
        service = sdk.ServiceClient()
        training = _training_client(service)
        ready = time.perf_counter()
        batch = [
            types.Datum(
                model_input=types.ModelInput.from_ints(tokens),
                loss_fn_inputs={"target_tokens": targets, "weights": weights},
            )
            for tokens, targets, weights in lists
        ]
        output = training.forward_backward(batch, "cross_entropy").result(timeout=args.timeout)
        stepped = time.perf_counter()
    service.close("success").result(timeout=60)
    if len(output.loss_fn_outputs) != len(lists):
        raise RuntimeError(f"cold forward_backward returned {len(output.loss_fn_outputs)} outputs")
    return {
        "count": 1,
        "failures": 0,
        "import_s": imported - start,
        "setup_s": ready - imported,
        "first_step_s": stepped - ready,
    }
