"""Sessions: metadata, listing and inspecting sessions, closing them properly.

Run: python examples/sessions.py
"""

from __future__ import annotations

from _server import BASE_MODEL, server

import tinkex as tinker


def main() -> None:
    # The context manager closes the session: "success", or "errored" if the block raised.
    with tinker.ServiceClient(
        user_metadata={"team": "examples", "purpose": "sessions"},
        display_name="sessions-example",
    ) as service_client:
        training_client = service_client.create_lora_training_client(BASE_MODEL, rank=4).result()
        sampler = service_client.create_sampling_client(base_model=BASE_MODEL).result()
        print("training run:", training_client.model_id)
        print("console url:", service_client.get_console_url())
        del sampler

    rest_client = tinker.RestClient()
    session_ids = rest_client.list_sessions(limit=10).result().sessions
    print(f"{len(session_ids)} recent sessions; newest: {session_ids[0]}")
    for session_id in session_ids[:3]:
        info = rest_client.get_session(session_id).result()
        print(
            f"  {session_id}: runs={info.training_run_ids} samplers={len(info.sampler_ids)}"
            f" metadata={info.user_metadata}"
        )
    newest = rest_client.get_session(session_ids[0]).result()
    assert training_client.model_id in newest.training_run_ids


if __name__ == "__main__":
    with server():
        main()
