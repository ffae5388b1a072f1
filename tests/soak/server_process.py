"""A LocalServer in its own process, for the soak test (run as a script: ``python PATH FAULTS``).

The soak test measures the *client's* memory and threads, so the server runs elsewhere. This
script starts ``LocalServer(faults=FAULTS)``, prints one JSON line ``{"base_url": ...}``, then
answers each line ``counts`` on stdin with one JSON line of the server's counters:

* ``finished``: ``[kind, owner, outcome, n]`` rows (:meth:`LocalServer.finished_requests`);
* ``pending``: server-side futures not finished yet;
* ``faults``: ``[endpoint, fault, n]`` rows (:attr:`LocalServer.injected_faults`);
* ``rss_bytes``: the server process's resident memory.

End of input (or ``stop``) closes the server and exits.
"""

from __future__ import annotations

import collections
import json
import sys

from workload import resident_bytes  # this script's folder is sys.path[0]

from tinkex.local import LocalServer


def counts(server: LocalServer) -> dict[str, object]:
    """The server's counters, as the module docstring lists them."""
    faults = collections.Counter(server.injected_faults)
    return {
        "finished": [
            [kind, owner, outcome, n]
            for (kind, owner, outcome), n in sorted(
                server.finished_requests().items(), key=lambda item: str(item[0])
            )
        ],
        "pending": server.pending_requests(),
        "faults": [[endpoint, fault, n] for (endpoint, fault), n in sorted(faults.items())],
        "rss_bytes": resident_bytes(),
    }


def main(faults: str) -> None:
    with LocalServer(faults=faults) as server:
        print(json.dumps({"base_url": server.base_url}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stop":
                break
            if command != "counts":
                raise SystemExit(f"server_process: unknown command {command!r} (counts, stop)")
            print(json.dumps(counts(server)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
