"""Model info, server health and unloading a model before the session ends.

Asks the service whether it is up (health_check) and what it serves (capabilities), creates a
LoRA training client and prints what the server said about the model (get_info: LoRA rank,
tokenizer id), trains one step, unloads the model (unload_model) and shows that the server no
longer knows it, while a second model of the same session keeps working.

Run: python examples/model_info_and_unload.py
"""

from __future__ import annotations

from _server import server

import tinkex as tinker
from tinkex import types
from tinkex.tokenizer import Tokenizer

BASE_MODEL = "Qwen/Qwen3-8B"


def datum(text: str, tokenizer: Tokenizer) -> types.Datum:
    tokens = tokenizer.encode(text, add_special_tokens=False)
    return types.Datum(
        model_input=types.ModelInput.from_ints(tokens[:-1]),
        loss_fn_inputs={"target_tokens": tokens[1:], "weights": [1.0] * (len(tokens) - 1)},
    )


def main() -> None:
    with tinker.RestClient() as rest_client:
        print(f"health: {rest_client.health_check().result()}")
        models = rest_client.get_server_capabilities().result().supported_models
        print(f"the server supports {len(models)} model(s), e.g. {models[0].model_name}")

    with tinker.ServiceClient() as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=4).result()
        info = training_client.get_info()
        print(f"model {training_client.model_id}: {info.model_name}, lora rank {info.lora_rank}")
        print(f"tokenizer id (the server's answer): {info.model_data.tokenizer_id}")
        tokenizer = training_client.get_tokenizer()
        batch = [datum("Hello there, how are you?", tokenizer)]
        loss = training_client.forward_backward(batch, "cross_entropy").result()
        print(f"one step: loss:sum={loss.metrics['loss:sum']:.3f}")

        other = service_client.create_lora_training_client(BASE_MODEL, rank=4).result()
        response = training_client.unload_model().result()
        print(f"unloaded {response.model_id}")
        try:
            training_client.forward_backward(batch, "cross_entropy").result()
        except tinker.BadRequestError as exc:
            print(f"after unload the server answers {exc.status_code}: {exc.body}")
        else:
            raise SystemExit("the unloaded model still trained")
        other.forward_backward(batch, "cross_entropy").result()
        print(f"the session's other model {other.model_id} still trains")


if __name__ == "__main__":
    with server():
        main()
