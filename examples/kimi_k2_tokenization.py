"""Kimi K2 tokenization: the pinned revision, the tiktoken tokenizer, special tokens, a pattern
override, and sampling a Kimi model with it.

Offline, the Kimi K2 files are a stand-in (Kimi's file format, tiktoken.model +
tokenizer_config.json, with its chat token names on the local model's byte ids) laid out in a
throwaway Hugging Face cache as the snapshot the official SDK pins, next to a newer revision that
refs/main names. With the real cache (or network access), the same calls read the real files.

Run: python examples/kimi_k2_tokenization.py
"""

from __future__ import annotations

import os
import tempfile

from _server import server

import tinkex as tinker
from tinkex import types
from tinkex.local.hf_tokenizer import (
    BYTE_LAYOUT,
    KIMI_K2_LAYOUT,
    hub_cache_dir,
    write_hub_cache_entry,
)
from tinkex.tokenizer import (
    PINNED_TOKENIZERS,
    TiktokenTokenizer,
    get_tokenizer,
    hub_arguments,
    tokenizer_for_model,
)

KIMI = "moonshotai/Kimi-K2-Thinking"


def lay_out_cache(hf_home: str) -> str:
    """The pinned snapshot (Kimi's chat tokens) and a newer one at refs/main (other ids)."""
    pinned = PINNED_TOKENIZERS[KIMI][1]
    cache = hub_cache_dir(hf_home)
    write_hub_cache_entry(KIMI_K2_LAYOUT, cache, KIMI, revision=pinned, file_format="tiktoken")
    write_hub_cache_entry(BYTE_LAYOUT, cache, KIMI, revision="f" * 40, file_format="tiktoken")
    return pinned


def tokenize(pinned: str) -> TiktokenTokenizer:
    repo, kwargs = hub_arguments(KIMI)
    print(f"{KIMI}: AutoTokenizer.from_pretrained({repo!r}, **{kwargs})")

    kimi = get_tokenizer(KIMI)
    assert isinstance(kimi, TiktokenTokenizer)
    ids = kimi.encode("Say hi<|im_end|>")
    print(f"pinned revision {pinned[:12]}: {ids} -> {kimi.decode(ids)!r}")
    newer = get_tokenizer(KIMI, revision="main")
    print(f"refs/main ({'f' * 12}): <|im_end|> is {newer.encode('<|im_end|>')}, not {ids[-1]}")
    assert ids[-1] == KIMI_K2_LAYOUT.token_id("<|im_end|>") != newer.encode("<|im_end|>")[0]

    # What the clients' get_tokenizer() gives: transformers first (it cannot build this
    # stand-in: no remote code), then tinkex's own tokenizer on the same pinned snapshot.
    same = tokenizer_for_model(KIMI)
    print(f"tokenizer_for_model: {type(same).__name__}, {same.encode('Say hi<|im_end|>')}")
    assert same.encode("Say hi<|im_end|>") == ids

    plain = kimi.encode("<|im_end|>", allow_special_tokens=False)
    print(f"special-token text as plain text: {plain}")
    assert kimi.decode(plain) == "<|im_end|>"

    words = get_tokenizer(KIMI, pat_str=r"\S+|\s+")
    spaced = words.encode("hi  there")
    print(f"pattern override: {spaced} (round trip: {words.decode(spaced)!r})")
    return kimi


def sample(kimi: TiktokenTokenizer) -> None:
    with tinker.ServiceClient() as service_client:
        sampler = service_client.create_sampling_client(base_model=KIMI).result()
        prompt = types.ModelInput.from_text("Say hi", kimi)
        params = types.SamplingParams(max_tokens=12, temperature=0.7, seed=3)
        response = sampler.sample(prompt, num_samples=2, sampling_params=params).result()
        # (The local server's tiny model is barely trained: expect arbitrary bytes.)
        for i, sequence in enumerate(response.sequences):
            print(
                f"sample {i}: {sequence.stop_reason}, {len(sequence.tokens)} tokens, "
                f"{kimi.decode(sequence.tokens)!r}"
            )


def main() -> None:
    saved = {name: os.environ.get(name) for name in ("HF_HOME", "HF_HUB_OFFLINE")}
    with tempfile.TemporaryDirectory() as hf_home:
        os.environ.update(HF_HOME=hf_home, HF_HUB_OFFLINE="1")
        try:
            kimi = tokenize(lay_out_cache(hf_home))
            sample(kimi)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


if __name__ == "__main__":
    with server():
        main()
