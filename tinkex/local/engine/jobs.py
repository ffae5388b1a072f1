"""Job bodies: what a training request does to its model, and what a sample request computes.

``job_*`` functions build a :data:`~tinkex.local.engine.sequencer.JobFn` (run by the sequencer in
a worker thread, one job per model at a time); :func:`run_sample` runs a sample request in the
sampling pool. Jobs touch only their own model and the store (which is thread-safe).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from tinkex.local.codec import FwdBwdCall, FwdBwdPayload, SamplePayload, TargetIds
from tinkex.local.engine.memory import Holding
from tinkex.local.engine.outcomes import UserError
from tinkex.local.engine.seeding import SeedBasis, derive_seed
from tinkex.local.engine.sequencer import JobFn, TrainingModel
from tinkex.local.model import (
    AdamSettings,
    LoraSpec,
    ModelArch,
    ModelInputError,
    SamplerWeights,
    SampleSettings,
    create_trainable,
    sample,
)
from tinkex.local.storage import CheckpointRow, Store
from tinkex.local.storage.checkpoints import (
    ADAPTER_FILE,
    CONFIG_FILE,
    OPTIMIZER_FILE,
    OPTIMIZER_PREFIX,
    AgeRecipients,
    adapter_config,
    adapter_config_bytes,
    checkpoint_tensors,
    encrypt_files,
    peft_tensors,
    safetensors_bytes,
)
from tinkex.tokenizer.byte import TOKENIZER_ID

__all__ = [
    "SampleJob",
    "Sampler",
    "job_create",
    "job_forward_backward",
    "job_load_create",
    "job_load_into",
    "job_optim_step",
    "job_save_external",
    "job_save_sampler_named",
    "job_save_weights",
    "job_unnamed_sampler",
    "lora_from_wire",
    "lora_to_wire",
    "run_sample",
]


# --- LoRA configs ------------------------------------------------------------------------------


def lora_to_wire(lora: LoraSpec) -> dict[str, Any]:
    """LoraSpec -> the LoraConfig JSON object (as stored with the run)."""
    data: dict[str, Any] = {
        "rank": lora.rank,
        "train_mlp": lora.train_mlp,
        "train_attn": lora.train_attn,
        "train_unembed": lora.train_unembed,
    }
    if lora.seed is not None:
        data["seed"] = lora.seed
    return data


def lora_from_wire(value: Mapping[str, Any] | None) -> LoraSpec:
    """A LoraConfig JSON object (or None: defaults) -> LoraSpec.

    Raises:
        UserError: the values do not make a LoRA adapter (named).
    """
    value = dict(value or {})
    try:
        return LoraSpec(
            rank=value.get("rank", 32),
            seed=value.get("seed"),
            train_mlp=value.get("train_mlp", True),
            train_attn=value.get("train_attn", True),
            train_unembed=value.get("train_unembed", True),
        )
    except ModelInputError as exc:
        raise UserError(f"lora_config: {exc}") from None


def _adapter_config(model: TrainingModel, *, peft_names: bool = False) -> bytes:
    config = adapter_config(
        run_id=model.model_id,
        base_model=model.base_model,
        arch=model.arch,
        lora=lora_to_wire(model.lora),
        tokenizer_id=TOKENIZER_ID,
        peft_names=peft_names,
    )
    return adapter_config_bytes(config)


# --- training jobs (worker threads) ------------------------------------------------------------


def job_create(model: TrainingModel) -> dict[str, Any]:
    """Seq 0 of a model created with create_model."""
    model.trainable = create_trainable(model.arch, model.lora)
    return {"model_id": model.model_id, "type": "create_model"}


def job_forward_backward(call: FwdBwdCall) -> JobFn:
    """A forward / forward_backward job."""

    def run(model: TrainingModel) -> FwdBwdPayload:
        trainable = model.require_trainable()
        result = trainable.forward_backward(
            call.data,
            call.loss_fn,
            call.loss_fn_config,
            forward_only=call.forward_only,
            columns=call.columns,
        )
        metrics = {k: float(v) for k, v in result.metrics.items()}
        columns = None
        if result.columns is not None and result.lengths is not None:
            columns = (result.lengths, result.columns)
        return FwdBwdPayload(outputs=result.outputs, metrics=metrics, columns=columns)

    return run


def job_optim_step(
    adam: AdamSettings, on_step: Callable[[TrainingModel], None] | None = None
) -> JobFn:
    """An optim_step job; ``on_step(model)`` runs after a successful step."""

    def run(model: TrainingModel) -> dict[str, Any]:
        metrics = model.require_trainable().optim_step(adam)
        model.optim_steps += 1
        if on_step is not None:
            on_step(model)
        return {"metrics": {k: float(v) for k, v in metrics.items()}}

    return run


def _write(
    store: Store,
    model: TrainingModel,
    kind: str,
    name: str,
    files: Mapping[str, bytes],
    ttl: float | None,
    metadata: Mapping[str, str] | None,
    *,
    overwrite: bool = False,
) -> CheckpointRow:
    """Write checkpoint ``kind/name`` of ``model`` and mark the run as used."""
    row = store.write_checkpoint(
        model.model_id,
        kind,
        name,
        files,
        ttl_seconds=ttl,
        user_metadata=metadata,
        overwrite=overwrite,
    )
    store.touch_run(model.model_id)
    return row


def job_save_weights(
    store: Store, name: str, ttl: float | None, metadata: dict[str, str] | None, overwrite: bool
) -> JobFn:
    """A save_weights job (training checkpoint with optimizer state)."""

    def run(model: TrainingModel) -> dict[str, Any]:
        tensors = model.require_trainable().state_dict(include_optimizer=True)
        weights = {k: v for k, v in tensors.items() if not k.startswith(OPTIMIZER_PREFIX)}
        optimizer = {k: v for k, v in tensors.items() if k.startswith(OPTIMIZER_PREFIX)}
        files = {
            ADAPTER_FILE: safetensors_bytes(weights),
            CONFIG_FILE: _adapter_config(model),
            OPTIMIZER_FILE: safetensors_bytes(optimizer),
        }
        row = _write(store, model, "weights", name, files, ttl, metadata, overwrite=overwrite)
        return {"path": row.tinker_path, "type": "save_weights"}

    return run


def job_save_sampler_named(
    store: Store, name: str, ttl: float | None, metadata: dict[str, str] | None
) -> JobFn:
    """A named save_weights_for_sampler job."""

    def run(model: TrainingModel) -> dict[str, Any]:
        weights = model.require_trainable().sampler_weights().state_dict()
        files = {ADAPTER_FILE: safetensors_bytes(weights), CONFIG_FILE: _adapter_config(model)}
        row = _write(store, model, "sampler_weights", name, files, ttl, metadata)
        return {"path": row.tinker_path, "type": "save_weights_for_sampler"}

    return run


def job_save_external(
    store: Store, name: str, ttl: float | None, recipients: AgeRecipients | None = None
) -> JobFn:
    """A save_weights_external job (HF PEFT adapter files, encrypted to ``recipients``)."""

    def run(model: TrainingModel) -> dict[str, Any]:
        weights = model.require_trainable().sampler_weights().state_dict()
        files = {
            ADAPTER_FILE: safetensors_bytes(peft_tensors(weights)),
            CONFIG_FILE: _adapter_config(model, peft_names=True),
        }
        if recipients:
            files = encrypt_files(files, recipients)
        row = _write(store, model, "external_weights", name, files, ttl, None)
        return {
            "path": row.tinker_path,
            "size_bytes": row.size_bytes,
            "type": "save_weights_external",
        }

    return run


def job_load_create(
    store: Store, path: str, optimizer: bool, model_id: str, request_path: str
) -> JobFn:
    """Seq 0 of a model created by load_weights (create-via-load)."""

    def run(model: TrainingModel) -> dict[str, Any]:
        tensors = checkpoint_tensors(store, path, optimizer=optimizer)
        trainable = create_trainable(model.arch, model.lora)
        trainable.load_state_dict(tensors, include_optimizer=optimizer)
        model.trainable = trainable
        return {"model_id": model_id, "path": request_path, "type": "load_weights"}

    return run


def job_load_into(store: Store, path: str, optimizer: bool) -> JobFn:
    """A legacy load_weights into an existing model (its first request)."""

    def run(model: TrainingModel) -> dict[str, Any]:
        tensors = checkpoint_tensors(store, path, optimizer=optimizer)
        model.require_trainable().load_state_dict(tensors, include_optimizer=optimizer)
        return {"model_id": model.model_id, "path": path, "type": "load_weights"}

    return run


def job_unnamed_sampler(register: Callable[[SamplerWeights], str], memory: Holding) -> JobFn:
    """An unnamed save_weights_for_sampler job: snapshot weights into a new sampling session
    (which then owns ``memory``; released if the job fails)."""

    def run(model: TrainingModel) -> dict[str, Any]:
        try:
            weights = model.require_trainable().sampler_weights()
            sampler_id = register(weights)
        except BaseException:
            memory.release()
            raise
        return {"sampling_session_id": sampler_id, "type": "save_weights_for_sampler"}

    return run


# --- sampling ----------------------------------------------------------------------------------


@dataclass
class Sampler:
    """A sampling session: base model or a LoRA snapshot; weights are loaded lazily."""

    sampler_id: str
    session_id: str | None
    base_model: str
    arch: ModelArch
    model_path: str | None
    weights: SamplerWeights | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: the memory budget's holding for the weights (released when the sampler is dropped)
    memory: Holding | None = None
    #: why the sampler is gone (its session ended), once dropped
    dropped: str | None = None
    #: clone id -> its ``retrieve_futures`` target, one tuple shared by the records of its samples
    _targets: dict[int, tuple[str, int]] = field(default_factory=dict, repr=False)

    def target(self, clone: int) -> tuple[str, int]:
        """The (sampler id, ``clone``) whose completion feed reports a sample."""
        found = self._targets.get(clone)
        if found is None:
            found = self._targets[clone] = (self.sampler_id, clone)
        return found

    def drop(self, reason: str) -> None:
        """Forget the weights and give their memory back: the sampler is gone."""
        with self.lock:
            self.weights = None
            self.dropped = reason
        if self.memory is not None:
            self.memory.release()

    def get_weights(self, store: Store) -> SamplerWeights:
        """The sampling weights (loaded from the checkpoint on first use).

        Raises:
            UserError: the sampler was dropped.
        """
        with self.lock:
            if self.dropped is not None:
                raise UserError(f"sampling session {self.sampler_id} is closed: {self.dropped}")
            if self.weights is None:
                if self.model_path is None:
                    self.weights = SamplerWeights.base(self.arch)
                else:
                    tensors = checkpoint_tensors(store, self.model_path, optimizer=False)
                    self.weights = SamplerWeights.from_state_dict(self.arch, tensors)
            return self.weights


@dataclass
class SampleJob:
    """The parsed body of one asample request."""

    prompt: npt.NDArray[np.int64]
    num_samples: int
    settings: SampleSettings
    prompt_logprobs: bool
    topk_prompt_logprobs: int
    prompt_logprobs_last_n: int | None
    sequence_ids: list[str]
    topk_sample_logprobs: int = 0
    targets: TargetIds | None = None
    prompt_alt_tokens_k: int = 0
    #: keep the sampled sequences for stable_reinforce (``record_stability_info``)
    record_stability: bool = False
    #: an unseeded request on a server with ``sampling_seed``: derive its seed from this
    seed_basis: SeedBasis | None = None


def run_sample(
    sampler: Sampler,
    store: Store,
    job: SampleJob,
    cancelled: Callable[[], bool] | None = None,
) -> SamplePayload:
    """Sample in a worker thread; stops early (:class:`~tinkex.local.model.SampleCancelled`)
    once ``cancelled()`` is true."""
    weights = sampler.get_weights(store)
    settings = job.settings
    if job.seed_basis is not None:
        seed = derive_seed(job.seed_basis, weights, job.prompt, settings, job.num_samples)
        settings = dataclasses.replace(settings, seed=seed)
    outputs, scores = sample(
        weights,
        job.prompt,
        job.num_samples,
        settings,
        prompt_logprobs=job.prompt_logprobs,
        topk_prompt_logprobs=job.topk_prompt_logprobs,
        topk_sample_logprobs=job.topk_sample_logprobs,
        target_prompt_logprobs=None if job.targets is None else job.targets.dense,
        prompt_alt_tokens_k=job.prompt_alt_tokens_k,
        cancelled=cancelled,
    )
    if scores is not None and job.prompt_logprobs_last_n is not None:
        cut = max(0, scores.logprobs.shape[0] - job.prompt_logprobs_last_n)
        scores.logprobs = scores.logprobs.copy()
        scores.logprobs[:cut] = np.nan
        if scores.topk_ids is not None and scores.topk_logprobs is not None:
            scores.topk_ids = scores.topk_ids.copy()
            scores.topk_logprobs = scores.topk_logprobs.copy()
            scores.topk_ids[:cut] = -1
            scores.topk_logprobs[:cut] = np.nan
    return SamplePayload(
        sequences=outputs,
        sequence_ids=job.sequence_ids,
        prompt_scores=scores,
        prompt_logprobs=job.prompt_logprobs,
        topk_prompt_logprobs=job.topk_prompt_logprobs,
        targets=job.targets,
    )
