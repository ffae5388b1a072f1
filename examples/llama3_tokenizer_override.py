"""The Llama 3 tokenizer override: Llama 3 models read their tokenizer from an ungated copy.

Meta's Llama 3 repositories on the Hugging Face Hub are gated (an account that accepted the
license, and its token). The official SDK, and tinkex, load the tokenizer of every
``meta-llama/Llama-3...`` model from ``thinkingmachineslabinc/meta-llama-3-instruct-tokenizer``
instead. Offline, that repository is a stand-in (a byte-level vocabulary in Hugging Face format)
laid out in a throwaway Hugging Face cache; nothing for ``meta-llama/...`` is in it.

Run: python examples/llama3_tokenizer_override.py
"""

from __future__ import annotations

import os
import tempfile

from _server import server

import tinkex as tinker
from tinkex import types
from tinkex.local.hf_tokenizer import BYTE_LAYOUT, hub_cache_dir, write_hub_cache_entry
from tinkex.tokenizer import (
    LLAMA3_TOKENIZER,
    Tokenizer,
    resolve_tokenizer_id,
    tokenizer_for_model,
)

LLAMA = "meta-llama/Llama-3.1-8B"


def main() -> None:
    for name in (LLAMA, "meta-llama/Llama-3.3-70B-Instruct:peft", "meta-llama/Llama-3.2-1B"):
        print(f"{name:40} -> {resolve_tokenizer_id(name)}")
    assert resolve_tokenizer_id(LLAMA) == LLAMA3_TOKENIZER

    saved = {name: os.environ.get(name) for name in ("HF_HOME", "HF_HUB_OFFLINE")}
    with tempfile.TemporaryDirectory() as hf_home:
        write_hub_cache_entry(BYTE_LAYOUT, hub_cache_dir(hf_home), LLAMA3_TOKENIZER)
        os.environ.update(HF_HOME=hf_home, HF_HUB_OFFLINE="1")
        try:
            # What get_tokenizer() gives for a Llama 3 model when the server names no
            # tokenizer: transformers' AutoTokenizer (when installed) on the override repo.
            tokenizer = tokenizer_for_model(LLAMA)
            prompt_text = "Demonstrate the Llama-3 tokenizer override in one sentence."
            ids = tokenizer.encode(prompt_text, add_special_tokens=False)
            print(f"{type(tokenizer).__name__} from {tokenizer.name_or_path}")
            print(f"encoded prompt ({len(ids)} ids): {ids[:12]}...")
            assert tokenizer.decode(ids) == prompt_text
            sample(tokenizer, ids)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def sample(tokenizer: Tokenizer, ids: list[int]) -> None:
    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(LLAMA, rank=4).result()
        # The server's own answer wins when it gives one (the local server names its folder).
        server_tokenizer = training_client.get_info().model_data.tokenizer_id
        print(f"the server's tokenizer_id for {LLAMA}: {server_tokenizer}")
        sampler = service_client.create_sampling_client(base_model=LLAMA).result()
        params = types.SamplingParams(max_tokens=16, temperature=0.7, seed=5)
        response = sampler.sample(types.ModelInput.from_ints(ids), 1, params).result()
        sequence = response.sequences[0]
        # (The local server's tiny model is barely trained: expect arbitrary bytes.)
        print(f"decoded sample ({sequence.stop_reason}): {tokenizer.decode(sequence.tokens)!r}")


if __name__ == "__main__":
    with server():
        main()
