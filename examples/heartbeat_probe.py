"""Session heartbeats, probed: a session lives while something says it is alive.

The client's heartbeat thread sends `POST /api/v1/session_heartbeat` for its session (every
10 s); the server ends a session that goes quiet for too long. Here the embedded server ends
sessions after 1 s of silence, and `RestClient.request` sends the heartbeats by hand: a live
session answers 200, one kept alive by probes outlives the timeout, one left quiet expires
(410), an unknown one is 404; then a client whose own heartbeat runs every 0.2 s
(`ServiceClient(heartbeat_interval=0.2)`) keeps its session alive with no help.

Run: python examples/heartbeat_probe.py
"""

from __future__ import annotations

import time

from _server import BASE_MODEL, server

import tinkex as tinker


def probe(rest_client: tinker.RestClient, session_id: str) -> str:
    """One heartbeat by hand; what the server answered, in words."""
    body = {"session_id": session_id, "type": "session_heartbeat"}
    try:
        answer = rest_client.request("POST", "/api/v1/session_heartbeat", json=body).result()
    except tinker.APIStatusError as exc:
        detail = exc.body.get("detail") if isinstance(exc.body, dict) else exc.body
        return f"{exc.status_code} {detail}"
    return f"{answer.status_code} {answer.json()} in {answer.elapsed * 1000:.0f} ms"


def main() -> None:
    service_client = tinker.ServiceClient()
    service_client.create_lora_training_client(BASE_MODEL, rank=4).result()  # starts the session
    session_id = service_client.get_console_url().rsplit("/", 1)[-1]
    rest_client = tinker.RestClient()

    print("live session:", probe(rest_client, session_id))
    started = time.monotonic()
    while time.monotonic() - started < 2.0:  # twice the server's timeout, probing all along
        probe(rest_client, session_id)
        time.sleep(0.25)
    print("kept alive by probes for 2 s:", probe(rest_client, session_id))
    time.sleep(2.0)  # silence: nothing names the session
    print("after 2 s of silence:", probe(rest_client, session_id))
    print("unknown session:", probe(rest_client, "no-such-session"))
    service_client.close()

    # The client's own heartbeat, every 0.2 s here (default 10 s), keeps its session alive.
    with tinker.ServiceClient(heartbeat_interval=0.2) as beating:
        beating.create_lora_training_client(BASE_MODEL, rank=4).result()
        beating_id = beating.get_console_url().rsplit("/", 1)[-1]
        time.sleep(2.0)  # no probes, no requests: only the heartbeat thread
        print("with heartbeat_interval=0.2, after 2 s:", probe(rest_client, beating_id))
    rest_client.close()


if __name__ == "__main__":
    with server(heartbeat_timeout=1.0):
        main()
