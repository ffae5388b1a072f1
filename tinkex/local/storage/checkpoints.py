"""Checkpoint file formats: what a checkpoint directory holds and how it is read back.

Every checkpoint directory (see :class:`~tinkex.local.storage.index.Store`) holds::

    adapter_model.safetensors   LoRA weights (PEFT-style adapter layout; external exports use the
                                HF PEFT key names and ``(r, d_in)`` ``lora_A`` layout)
    adapter_config.json         PEFT adapter config + a ``tinkex`` section to rebuild the model
    optimizer.safetensors       AdamW state (``weights`` checkpoints only)

Archives (``GET .../archive``) are plain tar files of that directory. External exports saved
with ``age_encryption_recipients`` hold each file encrypted to those recipients (age format,
https://age-encryption.org) and named ``<file>.age``; this needs the optional ``pyrage``
package (``pip install 'tinkex[local-age]'``).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from tinkex.local.model import LORA_ALPHA, ModelArch
from tinkex.local.storage.index import Store
from tinkex.local.storage.paths import CheckpointError, parse_tinker_path

__all__ = [
    "ADAPTER_FILE",
    "AGE_SUFFIX",
    "MAX_AGE_RECIPIENTS",
    "AgeRecipients",
    "CONFIG_FILE",
    "OPTIMIZER_FILE",
    "OPTIMIZER_PREFIX",
    "adapter_config",
    "adapter_config_bytes",
    "age_recipients",
    "checkpoint_tensors",
    "encrypt_files",
    "load_safetensors",
    "peft_tensors",
    "safetensors_bytes",
    "tar_directory",
]

ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
OPTIMIZER_FILE = "optimizer.safetensors"
#: state-dict keys with this prefix are optimizer state (stored in OPTIMIZER_FILE)
OPTIMIZER_PREFIX = "optimizer."
#: what encrypted files are called: ``adapter_model.safetensors.age``
AGE_SUFFIX = ".age"
#: the most recipients one export may be encrypted to (as the Tinker SDK documents)
MAX_AGE_RECIPIENTS = 10
#: parsed age recipients (``pyrage`` objects), as returned by :func:`age_recipients`
AgeRecipients = list[Any]


def safetensors_bytes(tensors: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """Serialize ``tensors`` as a safetensors file."""
    from safetensors.numpy import save

    return bytes(save({k: np.ascontiguousarray(v) for k, v in tensors.items()}))


def load_safetensors(path: str) -> dict[str, npt.NDArray[Any]]:
    """Read a safetensors file into numpy arrays."""
    from safetensors.numpy import load_file

    return dict(load_file(path))


def _module_groups(arch: ModelArch) -> dict[str, str]:
    from tinkex.local.model.tiny import adapted_modules

    return adapted_modules(arch) if arch.n_layers else {}


def adapter_config(
    *,
    run_id: str,
    base_model: str,
    arch: ModelArch,
    lora: Mapping[str, Any],
    tokenizer_id: str,
    peft_names: bool = False,
) -> dict[str, Any]:
    """PEFT ``adapter_config.json`` contents (+ tinkex metadata to rebuild the model).

    ``lora`` is the run's LoraConfig JSON object (``rank``, ``train_attn``, ...).
    """
    trained = {
        "attn": lora.get("train_attn", True),
        "mlp": lora.get("train_mlp", True),
        "unembed": lora.get("train_unembed", True),
    }
    targets = sorted(name for name, group in _module_groups(arch).items() if trained[group])
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": lora.get("rank"),
        "lora_alpha": LORA_ALPHA,
        "lora_dropout": 0.0,
        "bias": "none",
        "target_modules": targets,
        "tinkex": {
            "arch": arch.name,
            "base_model": base_model,
            "training_run_id": run_id,
            "tokenizer_id": tokenizer_id,
            "lora": dict(lora),
            "peft_key_names": peft_names,
        },
    }


def adapter_config_bytes(config: Mapping[str, Any]) -> bytes:
    """``adapter_config.json`` as written to disk."""
    return json.dumps(config, indent=2).encode()


def peft_tensors(tensors: Mapping[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    """Model LoRA tensors -> HF PEFT names and layout (``lora_A.weight`` is ``(r, d_in)``)."""
    out: dict[str, npt.NDArray[Any]] = {}
    for key, value in tensors.items():
        module, _, kind = key.rpartition(".")
        if kind not in ("lora_A", "lora_B"):
            continue
        out[f"base_model.model.{module}.{kind}.weight"] = np.ascontiguousarray(value.T)
    return out


def checkpoint_tensors(store: Store, path: str, *, optimizer: bool) -> dict[str, npt.NDArray[Any]]:
    """Tensors of the checkpoint at tinker ``path`` (with optimizer state when asked).

    Raises:
        CheckpointError: malformed path, missing checkpoint, or a kind that cannot be loaded.
    """
    run_id, kind, name = parse_tinker_path(path)
    row = store.get_checkpoint(run_id, kind, name)
    if row is None:
        raise CheckpointError(f"checkpoint {path} was not found")
    if kind == "external_weights":
        raise CheckpointError(f"checkpoint {path} is an external (HF) export and cannot be loaded")
    directory = store.checkpoint_dir(row)
    tensors = load_safetensors(os.path.join(directory, ADAPTER_FILE))
    if optimizer:
        if kind != "weights":
            raise CheckpointError(
                f"checkpoint {path} has no optimizer state (only tinker://RUN/weights/NAME has)"
            )
        tensors.update(load_safetensors(os.path.join(directory, OPTIMIZER_FILE)))
    return tensors


def tar_directory(directory: str, files: list[str]) -> bytes:
    """A tar archive (bytes) of ``files`` (relative to ``directory``)."""
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for rel in files:
            archive.add(os.path.join(directory, rel), arcname=rel, recursive=False)
    return buffer.getvalue()


def age_recipients(values: list[str], field: str = "age_encryption_recipients") -> AgeRecipients:
    """Parse age recipients: native ``age1...`` keys or SSH public keys (``ssh-ed25519 ...``).

    Raises:
        CheckpointError: more than :data:`MAX_AGE_RECIPIENTS`, a recipient that does not
            parse (named), or ``pyrage`` is not installed (says how to install it).
    """
    if len(values) > MAX_AGE_RECIPIENTS:
        raise CheckpointError(
            f"{field} has {len(values)} recipients; at most {MAX_AGE_RECIPIENTS} are allowed"
        )
    try:
        import pyrage
    except ImportError:
        raise CheckpointError(
            f"{field} needs the optional 'pyrage' package on the local server to encrypt the "
            "export; install it with: pip install 'tinkex[local-age]'"
        ) from None
    parsed = []
    for index, value in enumerate(values):
        kind = pyrage.ssh if value.startswith(("ssh-", "ecdsa-")) else pyrage.x25519
        try:
            parsed.append(kind.Recipient.from_str(value))
        except Exception as exc:  # pyrage.RecipientError and its Rust-side variants
            raise CheckpointError(
                f"{field}[{index}] is not an age or SSH public key ({exc}): {value[:60]!r}"
            ) from None
    return parsed


def encrypt_files(files: Mapping[str, bytes], recipients: AgeRecipients) -> dict[str, bytes]:
    """Each file encrypted to ``recipients`` (any one of their identities decrypts it) and
    renamed ``<name>.age``."""
    import pyrage

    return {f"{name}{AGE_SUFFIX}": pyrage.encrypt(data, recipients) for name, data in files.items()}
