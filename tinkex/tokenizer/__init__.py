"""Tokenizers: Hugging Face ``tokenizers`` files, tiktoken models and the built-in byte tokenizer."""

from tinkex.tokenizer.byte import TOKENIZER_ID as BYTE_TOKENIZER_ID
from tinkex.tokenizer.byte import ByteTokenizer

__all__ = ["BYTE_TOKENIZER_ID", "ByteTokenizer"]
