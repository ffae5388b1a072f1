"""save_weights_external with age_encryption_recipients: every exported file is encrypted to the
recipients and named ``<file>.age``; bad recipients and a server without pyrage are 400s."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
import requests
import tinker

from tinkex.local import LocalServer

from .conftest import Api

pyrage = pytest.importorskip("pyrage")


def _urls(api: Api, model_id: str, name: str) -> dict[str, str]:
    listing = api.get(
        f"training_runs/{model_id}/checkpoints/external_weights/{name}/external_weights_urls"
    )
    assert listing.status_code == 200, listing.text
    return dict(listing.json()["urls"])


def test_official_client_export_is_encrypted_to_each_recipient(server: LocalServer) -> None:
    first, second = pyrage.x25519.Identity.generate(), pyrage.x25519.Identity.generate()
    outsider = pyrage.x25519.Identity.generate()
    recipients = [str(first.to_public()), str(second.to_public())]
    with tinker.ServiceClient(base_url=server.base_url, api_key=server.api_key) as service:
        training = service.create_lora_training_client(base_model="tinkex/tiny", rank=4)
        training = training.result() if hasattr(training, "result") else training
        saved = training.save_weights_external(
            "encrypted", age_encryption_recipients=recipients
        ).result()
        model_id = training.model_id
    assert saved.path == f"tinker://{model_id}/external_weights/encrypted"
    urls = _urls(Api(server), model_id, "encrypted")
    assert set(urls) == {"adapter_config.json.age", "adapter_model.safetensors.age"}
    blobs = {name: requests.get(url).content for name, url in urls.items()}
    for blob in blobs.values():
        assert blob.startswith(b"age-encryption.org/v1\n")
        assert pyrage.decrypt(blob, [first]) == pyrage.decrypt(blob, [second])
        with pytest.raises(pyrage.DecryptError):
            pyrage.decrypt(blob, [outsider])
    config = json.loads(pyrage.decrypt(blobs["adapter_config.json.age"], [second]))
    assert config["peft_type"] == "LORA" and config["r"] == 4
    from safetensors.numpy import load

    tensors = load(pyrage.decrypt(blobs["adapter_model.safetensors.age"], [first]))
    assert tensors and all(k.startswith("base_model.model.") for k in tensors)


def _export(api: Api, model_id: str, seq_id: int, recipients: list[str]) -> Any:
    return api.post(
        "save_weights_external",
        {
            "model_id": model_id,
            "seq_id": seq_id,
            "path": f"e{seq_id}",
            "age_encryption_recipients": recipients,
        },
    )


def test_bad_recipients_are_400_naming_them(api: Api) -> None:
    model_id = api.model()
    good = str(pyrage.x25519.Identity.generate().to_public())
    bad = _export(api, model_id, 1, [good, "age1notakey"])
    assert bad.status_code == 400
    assert "age_encryption_recipients[1]" in bad.json()["detail"]
    too_many = _export(api, model_id, 2, [good] * 11)
    assert too_many.status_code == 400 and "at most 10" in too_many.json()["detail"]
    ok = _export(api, model_id, 3, [good])  # the rejected seq_ids did not block this one
    assert ok.status_code == 200, ok.text
    assert api.result(ok.json()["request_id"])["path"].endswith("/external_weights/e3")


def test_without_pyrage_the_error_says_how_to_install_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_id = api.model()
    recipient = str(pyrage.x25519.Identity.generate().to_public())
    monkeypatch.setitem(sys.modules, "pyrage", None)  # import pyrage now raises ImportError
    response = _export(api, model_id, 1, [recipient])
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "pyrage" in detail and "tinkex[local-age]" in detail
