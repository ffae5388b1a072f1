"""Client settings: explicit arguments > ``TINKER_*`` environment variables > defaults.

:class:`ClientSettings` is the one value every layer reads its configuration from. Clients
build it with :meth:`ClientSettings.resolve`; the transport, the executor and the holder only
ever see the resolved value, never the environment.

Environment variables read (all optional):

============================  ==========================================================
``TINKER_API_KEY``            API key (``tml-...``) or JWT (``eyJ...``)
``TINKER_BASE_URL``           server URL (empty means unset)
``TINKER_PROJECT_ID``         default project of sessions
``TINKER_TAGS``               comma-separated session tags
``TINKER_TELEMETRY``          ``1/true/yes/on`` (or unset) enables server telemetry
``TINKER_LOG``                ``debug`` / ``info`` / ``warning`` / ``error``
``TINKER_CREDENTIAL_CMD``     shell command that prints a credential
``CLOUDFLARE_ACCESS_CLIENT_ID`` / ``CLOUDFLARE_ACCESS_CLIENT_SECRET``  Cloudflare Access
``TINKEX_WIRE_FORMAT``        ``protobuf`` (default) or ``json`` for forward/backward bodies
``TINKEX_DUMP_HEADERS``       ``1/true/yes/on``: log every request's and answer's headers
                              (secrets masked) to the ``tinkex.wire`` logger at INFO
``TINKEX_POOL_SIZE``          HTTP connection-pool size (``max_connections``)
``TINKEX_DEFAULT_HEADERS``    JSON object of headers sent with every request
``TINKEX_DEFAULT_QUERY``      JSON object of query parameters added to every request
``TINKEX_PROXY``              proxy URL for every request (beats ``HTTPS_PROXY`` & co.)
``TINKEX_PROXY_HEADERS``      JSON object of headers sent to the proxy
``TINKEX_TELEMETRY_EVENTS``   ``1/true/yes/on``: the session's HTTP and queue events also go to
                              the server's telemetry (with ``TINKER_TELEMETRY`` on)
============================  ==========================================================

The full list, with the variables other parts of tinkex read, is
:data:`tinkex.environment.VARIABLES`.

The API key never appears in ``repr(settings)`` nor in any error message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from tinkex._exceptions import TinkerError
from tinkex._poll_pacing import NO_PACING, PollBackoffOption, PollPacing, poll_pacing
from tinkex.environment import json_string_map, positive_int, proxy_url, url_without_password

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_HEARTBEAT_WARNING_AFTER",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "ClientSettings",
    "configure_logging",
    "default_credentials_path",
    "run_credential_cmd",
    "telemetry_enabled_from_env",
]

DEFAULT_BASE_URL = "https://tinker.thinkingmachines.dev/services/tinker-prod"
#: HTTP connection-pool size.
DEFAULT_MAX_CONNECTIONS = 1000
#: Read timeout of a request, in seconds.
DEFAULT_TIMEOUT = 60.0
#: TCP/TLS connect timeout, in seconds.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: HTTP-layer retries of a request (docs/protocol.md, "Retries", layer 1).
DEFAULT_MAX_RETRIES = 10
#: Seconds between two session heartbeats, as in the official SDK.
DEFAULT_HEARTBEAT_INTERVAL = 10.0
#: Seconds without a successful heartbeat before a WARNING, as in the official SDK.
DEFAULT_HEARTBEAT_WARNING_AFTER = 120.0

#: Prefixes a credential must start with: a static API key, or a JWT.
_KEY_PREFIXES = ("tml-", "eyJ")
_TRUTHY = frozenset({"1", "true", "yes", "on"})
_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
_CREDENTIAL_CMD_TIMEOUT = 60.0

_MISSING_KEY_HELP = (
    "No Tinker API key found. Pass api_key='tml-...' to the client, set the TINKER_API_KEY "
    "environment variable, set TINKER_CREDENTIAL_CMD to a command that prints a credential, "
    "or store a key in ~/.tinker/credentials.json (`tinkex auth login`)."
)


def telemetry_enabled_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """``TINKER_TELEMETRY``: on unless set to something other than ``1/true/yes/on``.

    Unset means on; any other value (``0``, ``off``, ``""`` ...) turns telemetry off, as in the
    official SDK.
    """
    env = os.environ if environ is None else environ
    return env.get("TINKER_TELEMETRY", "1").strip().lower() in _TRUTHY


def default_credentials_path() -> Path:
    """Where ``tinkex auth login`` (and ``tinker auth login``) store the default key."""
    return Path("~/.tinker/credentials.json").expanduser()


def _mask(_: object) -> str:
    return "'***'"


def _frozen_headers(value: Mapping[str, str] | None) -> dict[str, str]:
    return dict(value or {})


#: Values of ``ClientSettings.sampling_io``.
SAMPLING_IO_MODES = ("asyncio", "threads")


def _frozen_tags(value: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(value or ())


def _proxy_repr(value: str | None) -> str:
    return repr(None if value is None else url_without_password(value))


@attrs.frozen
class ClientSettings:
    """Resolved, immutable configuration of one client.

    Build it with :meth:`resolve`; the constructor does no environment lookups and no
    validation beyond types, which makes it convenient in tests.

    Attributes:
        base_url: server URL without a trailing ``/`` (the ``/api/v1/...`` paths are appended).
        api_key: the credential sent as ``X-API-Key`` (hidden in ``repr``).
        project_id: default project of sessions, or ``None``.
        tags: session tags (deduplicated, order kept).
        telemetry_enabled: whether client telemetry is sent to the server.
        default_headers: headers merged last into every request.
        max_connections: HTTP connection-pool size.
        timeout: default read timeout of a request, in seconds.
        connect_timeout: TCP/TLS connect timeout, in seconds.
        max_retries: HTTP-layer retries of a request (docs/protocol.md, "Retries", layer 1).
        send_protobuf: send forward/backward bodies as protobuf (the default, as the official
            SDK does; the hosted service is only known to accept protobuf there) or JSON.
        compress_fwdbwd: zstd-compress protobuf forward/backward bodies.
        credential_cmd: ``TINKER_CREDENTIAL_CMD``, kept for JWT exchanges that need it.
        access_headers: ``CF-Access-Client-Id/Secret`` from ``CLOUDFLARE_ACCESS_CLIENT_*``
            (hidden in ``repr``).
        api_key_source: where ``api_key`` came from: ``"explicit"``, ``"env"``,
            ``"credential_cmd"``, ``"credentials_file"`` or ``"none"``.
        log_level: ``TINKER_LOG`` (lower-case) or ``None``.
        dump_headers: ``TINKEX_DUMP_HEADERS``: log each request/answer (headers masked).
        sampling_io: how in-flight samples wait: ``"asyncio"`` (the default: coroutines on
            one I/O thread per client, no thread per sample) or ``"threads"`` (one worker
            thread per in-flight sample, through ``requests``); ``TINKEX_SAMPLING_IO``.
        default_query: query parameters added to every request (``TINKEX_DEFAULT_QUERY``).
        proxy: the proxy every request goes through (``TINKEX_PROXY``); None: the standard
            ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` variables decide, as in ``requests``.
            Its password is hidden in ``repr``.
        proxy_headers: headers sent to the proxy (``TINKEX_PROXY_HEADERS``; hidden in ``repr``).
        telemetry_events: also report the session's HTTP and queue-state events to the
            server's telemetry (``TINKEX_TELEMETRY_EVENTS``; off by default).
        sample_concurrency: at most this many samples of one sampler in flight (``None``: the
            server's ``sample_max_concurrent_requests``, which stays the ceiling).
        sample_throttled_concurrency: sample submissions at once while throttled after an
            unhinted 429 (``None``: 10, as the official SDK).
        sample_byte_budget: estimated bytes of sample submissions in flight (``None``: the
            server's ``sample_dispatch_bytes_semaphore_size``, which stays the ceiling).
        heartbeat_interval: seconds between two session heartbeats.
        heartbeat_warning_after: seconds without a successful heartbeat before a WARNING.
        poll_pacing: the pause before an immediate re-poll of a future and the deadline of
            polling one (``TINKEX_POLL_BACKOFF``, ``TINKEX_POLL_TIMEOUT``; default neither).
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str = attrs.field(default="", repr=_mask)
    project_id: str | None = None
    tags: tuple[str, ...] = attrs.field(default=(), converter=_frozen_tags)
    telemetry_enabled: bool = True
    default_headers: dict[str, str] = attrs.field(
        factory=dict, converter=_frozen_headers, hash=False
    )
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    send_protobuf: bool = True
    compress_fwdbwd: bool = False
    credential_cmd: str | None = attrs.field(default=None, repr=False)
    access_headers: dict[str, str] = attrs.field(
        factory=dict, converter=_frozen_headers, hash=False, repr=False
    )
    api_key_source: str = "explicit"
    log_level: str | None = None
    dump_headers: bool = False
    sampling_io: str = "asyncio"
    default_query: dict[str, str] = attrs.field(factory=dict, converter=_frozen_headers, hash=False)
    proxy: str | None = attrs.field(default=None, repr=_proxy_repr)
    proxy_headers: dict[str, str] = attrs.field(
        factory=dict, converter=_frozen_headers, hash=False, repr=False
    )
    telemetry_events: bool = False
    sample_concurrency: int | None = None
    sample_throttled_concurrency: int | None = None
    sample_byte_budget: int | None = None
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    heartbeat_warning_after: float = DEFAULT_HEARTBEAT_WARNING_AFTER
    poll_pacing: PollPacing = NO_PACING

    @classmethod
    def resolve(
        cls,
        base_url: str | None = None,
        api_key: str | None = None,
        project_id: str | None = None,
        *,
        tags: Iterable[str] | None = None,
        telemetry_enabled: bool | None = None,
        default_headers: Mapping[str, str] | None = None,
        max_connections: int | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        max_retries: int | None = None,
        send_protobuf: bool | None = None,
        compress_fwdbwd: bool | None = None,
        default_query: Mapping[str, str] | None = None,
        proxy: str | None = None,
        proxy_headers: Mapping[str, str] | None = None,
        telemetry_events: bool | None = None,
        sample_concurrency: int | None = None,
        sample_throttled_concurrency: int | None = None,
        sample_byte_budget: int | None = None,
        heartbeat_interval: float | None = None,
        heartbeat_warning_after: float | None = None,
        poll_backoff: PollBackoffOption = None,
        poll_timeout: float | None = None,
        require_api_key: bool = True,
        environ: Mapping[str, str] | None = None,
        credentials_path: Path | None = None,
    ) -> ClientSettings:
        """Resolve settings: explicit arguments, then environment variables, then defaults.

        Args:
            base_url: server URL; falls back to ``TINKER_BASE_URL``, then the production URL.
            api_key: credential; falls back to ``TINKER_API_KEY``, ``TINKER_CREDENTIAL_CMD``
                and ``~/.tinker/credentials.json``, in that order.
            project_id: falls back to ``TINKER_PROJECT_ID``.
            tags: falls back to ``TINKER_TAGS`` (comma-separated).
            telemetry_enabled: falls back to ``TINKER_TELEMETRY`` (default on).
            default_headers: extra headers merged last into every request, over those of
                ``TINKEX_DEFAULT_HEADERS`` (a JSON object).
            max_connections: HTTP connection-pool size; falls back to ``TINKEX_POOL_SIZE``.
            timeout, connect_timeout, max_retries: transport knobs.
            send_protobuf: falls back to ``TINKEX_WIRE_FORMAT`` (``json``/``protobuf``).
            compress_fwdbwd: zstd-compress protobuf forward/backward bodies.
            default_query: query parameters of every request, over those of
                ``TINKEX_DEFAULT_QUERY`` (a JSON object).
            proxy: proxy URL; falls back to ``TINKEX_PROXY``, then to what ``requests``
                reads (``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``).
            proxy_headers: headers for the proxy; fall back to ``TINKEX_PROXY_HEADERS``.
            telemetry_events: falls back to ``TINKEX_TELEMETRY_EVENTS`` (default off).
            sample_concurrency, sample_throttled_concurrency, sample_byte_budget: the
                samplers' dispatch limits (see the attributes; explicit only).
            heartbeat_interval, heartbeat_warning_after: the session heartbeat's period and
                silence before a WARNING, in seconds (defaults 10 and 120).
            poll_backoff, poll_timeout: the pause before an immediate re-poll and the deadline
                of polling a future (:func:`tinkex._poll_pacing.poll_pacing`); fall back to
                ``TINKEX_POLL_BACKOFF`` / ``TINKEX_POLL_TIMEOUT`` (default: neither).
            require_api_key: when false, a missing credential resolves to ``api_key=""``
                instead of raising (for code paths that never talk to the server).
            environ: the environment to read (default ``os.environ``); for tests.
            credentials_path: the stored-credentials file (default
                ``~/.tinker/credentials.json``); for tests.

        Raises:
            TinkerError: no credential found, a key with the wrong prefix, a failing
                credential command, a malformed credentials file, or invalid settings;
                the message says how to fix it.
        """
        env = os.environ if environ is None else environ
        url = _resolve_base_url(base_url, env)  # checked first: before any credential command
        credential_cmd = env.get("TINKER_CREDENTIAL_CMD") or None
        key, source = _resolve_api_key(
            api_key, env, credential_cmd, credentials_path, require_api_key
        )
        if tags is None:
            tags = [part.strip() for part in env.get("TINKER_TAGS", "").split(",")]
        log = env.get("TINKER_LOG", "").strip().lower() or None
        settings = cls(
            base_url=url,
            api_key=key,
            project_id=project_id or env.get("TINKER_PROJECT_ID") or None,
            tags=tuple(dict.fromkeys(tag for tag in tags if tag)),
            telemetry_enabled=(
                telemetry_enabled_from_env(env) if telemetry_enabled is None else telemetry_enabled
            ),
            default_headers={
                **json_string_map(env, "TINKEX_DEFAULT_HEADERS"),
                **(default_headers or {}),
            },
            max_connections=_first_set(
                max_connections, positive_int(env, "TINKEX_POOL_SIZE"), DEFAULT_MAX_CONNECTIONS
            ),
            timeout=DEFAULT_TIMEOUT if timeout is None else float(timeout),
            connect_timeout=(
                DEFAULT_CONNECT_TIMEOUT if connect_timeout is None else float(connect_timeout)
            ),
            max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
            send_protobuf=_env_wire_is_protobuf(env) if send_protobuf is None else send_protobuf,
            compress_fwdbwd=bool(compress_fwdbwd),
            credential_cmd=credential_cmd,
            access_headers=_cloudflare_headers(env),
            api_key_source=source,
            log_level=log if log in _LOG_LEVELS else None,
            dump_headers=env.get("TINKEX_DUMP_HEADERS", "").strip().lower() in _TRUTHY,
            sampling_io=env.get("TINKEX_SAMPLING_IO", "").strip().lower() or "asyncio",
            **_proxy_and_query(env, default_query, proxy, proxy_headers),
            telemetry_events=(
                env.get("TINKEX_TELEMETRY_EVENTS", "").strip().lower() in _TRUTHY
                if telemetry_events is None
                else telemetry_events
            ),
            sample_concurrency=sample_concurrency,
            sample_throttled_concurrency=sample_throttled_concurrency,
            sample_byte_budget=sample_byte_budget,
            heartbeat_interval=(
                DEFAULT_HEARTBEAT_INTERVAL
                if heartbeat_interval is None
                else float(heartbeat_interval)
            ),
            heartbeat_warning_after=(
                DEFAULT_HEARTBEAT_WARNING_AFTER
                if heartbeat_warning_after is None
                else float(heartbeat_warning_after)
            ),
            poll_pacing=poll_pacing(poll_backoff, poll_timeout, env),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check numeric knobs; raises :class:`TinkerError` naming the field and value."""
        if self.max_connections < 1:
            raise TinkerError(
                f"ClientSettings.max_connections must be >= 1, got {self.max_connections}"
            )
        if self.timeout <= 0:
            raise TinkerError(f"ClientSettings.timeout must be > 0 seconds, got {self.timeout}")
        if self.connect_timeout <= 0:
            raise TinkerError(
                f"ClientSettings.connect_timeout must be > 0 seconds, got {self.connect_timeout}"
            )
        if self.max_retries < 0:
            raise TinkerError(f"ClientSettings.max_retries must be >= 0, got {self.max_retries}")
        for name in ("sample_concurrency", "sample_throttled_concurrency", "sample_byte_budget"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise TinkerError(f"ClientSettings.{name} must be >= 1, got {value}")
        for name in ("heartbeat_interval", "heartbeat_warning_after"):
            if getattr(self, name) <= 0:
                raise TinkerError(
                    f"ClientSettings.{name} must be > 0 seconds, got {getattr(self, name)}"
                )
        if self.sampling_io not in SAMPLING_IO_MODES:
            raise TinkerError(
                f"ClientSettings.sampling_io (TINKEX_SAMPLING_IO) must be one of "
                f"{', '.join(SAMPLING_IO_MODES)}, got {self.sampling_io!r}"
            )


def _first_set(*values: int | None) -> int:
    return next(value for value in values if value is not None)


def _proxy_and_query(
    env: Mapping[str, str],
    default_query: Mapping[str, str] | None,
    proxy: str | None,
    proxy_headers: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The default query and the proxy settings: explicit arguments, then ``TINKEX_*``."""
    url = proxy or env.get("TINKEX_PROXY", "").strip()
    return {
        "default_query": {
            **json_string_map(env, "TINKEX_DEFAULT_QUERY"),
            **(default_query or {}),
        },
        "proxy": proxy_url(url, "proxy" if proxy else "TINKEX_PROXY") if url else None,
        "proxy_headers": (
            json_string_map(env, "TINKEX_PROXY_HEADERS")
            if proxy_headers is None
            else dict(proxy_headers)
        ),
    }


def _resolve_base_url(explicit: str | None, env: Mapping[str, str]) -> str:
    url = (explicit or env.get("TINKER_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        origin = "base_url" if explicit else "TINKER_BASE_URL"
        raise TinkerError(
            f"{origin} must be an http:// or https:// URL, got {url!r}; "
            f"for example {DEFAULT_BASE_URL!r} or 'http://127.0.0.1:8000'."
        )
    return url


def _env_wire_is_protobuf(env: Mapping[str, str]) -> bool:
    wire = env.get("TINKEX_WIRE_FORMAT", "").strip().lower()
    if wire not in ("", "json", "protobuf", "proto"):
        raise TinkerError(
            f"TINKEX_WIRE_FORMAT must be 'json' or 'protobuf', got {wire!r}; "
            "unset it to use the default (protobuf)."
        )
    return wire != "json"


def _cloudflare_headers(env: Mapping[str, str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    client_id = env.get("CLOUDFLARE_ACCESS_CLIENT_ID")
    secret = env.get("CLOUDFLARE_ACCESS_CLIENT_SECRET")
    if client_id:
        headers["CF-Access-Client-Id"] = client_id
    if secret:
        headers["CF-Access-Client-Secret"] = secret
    return headers


def _has_key_prefix(key: str) -> bool:
    return key.startswith(_KEY_PREFIXES)


def _bad_prefix_error(origin: str, key: str) -> TinkerError:
    # Never echo the key itself: only its length.
    return TinkerError(
        f"The api_key must start with the 'tml-' prefix (or be a JWT starting with 'eyJ'); "
        f"the key from {origin} does not (length {len(key)}). Copy the full key from the "
        "Tinker console, or unset it to fall back to TINKER_CREDENTIAL_CMD / stored credentials."
    )


def _resolve_api_key(
    explicit: str | None,
    env: Mapping[str, str],
    credential_cmd: str | None,
    credentials_path: Path | None,
    required: bool,
) -> tuple[str, str]:
    candidate, origin, source = explicit, "the api_key argument", "explicit"
    if not candidate:
        candidate, origin, source = env.get("TINKER_API_KEY", ""), "TINKER_API_KEY", "env"
    candidate = (candidate or "").strip()
    if candidate:
        if _has_key_prefix(candidate):
            return candidate, source
        if not credential_cmd:
            raise _bad_prefix_error(origin, candidate)
    if credential_cmd:
        return run_credential_cmd(credential_cmd), "credential_cmd"
    stored = _read_stored_key(credentials_path or default_credentials_path())
    if stored:
        return stored, "credentials_file"
    if required:
        raise TinkerError(_MISSING_KEY_HELP)
    return "", "none"


def run_credential_cmd(command: str, *, timeout: float = _CREDENTIAL_CMD_TIMEOUT) -> str:
    """Run ``TINKER_CREDENTIAL_CMD`` (through the shell) and return the credential it prints.

    Raises:
        TinkerError: the command failed, timed out, printed nothing, or printed something that
            is not a ``tml-`` key or a JWT. The output itself is never included.
    """
    import signal
    import subprocess

    try:
        # A session of its own, so a timeout can kill the whole process group (the shell and
        # whatever it started), not just the shell.
        process = subprocess.Popen(
            command,
            shell=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise TinkerError(f"TINKER_CREDENTIAL_CMD could not be started: {exc}") from None
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise TinkerError(
            f"TINKER_CREDENTIAL_CMD did not finish within {timeout:g} s; "
            "check that the command runs non-interactively."
        ) from None
    if process.returncode != 0:
        detail = stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        raise TinkerError(
            f"TINKER_CREDENTIAL_CMD exited with status {process.returncode}: {detail[0][:200]}"
        )
    credential = stdout.strip()
    if not credential:
        raise TinkerError("TINKER_CREDENTIAL_CMD returned an empty credential.")
    if not _has_key_prefix(credential):
        raise _bad_prefix_error("TINKER_CREDENTIAL_CMD", credential)
    return credential


def _read_stored_key(path: Path) -> str | None:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise TinkerError(f"Could not read stored credentials {str(path)!r}: {exc}") from None
    try:
        data: Any = json.loads(raw)
        default = data.get("default")
        if default is None:
            return None
        record = data["keys"][default]
        key = record["key"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TinkerError(
            f"Stored credentials {str(path)!r} are malformed (expected "
            '{"version": 1, "default": <id>, "keys": {<id>: {"key": "tml-..."}}}); '
            "run `tinkex auth login` again or delete the file."
        ) from None
    if not isinstance(key, str) or not key:
        return None
    if not _has_key_prefix(key):
        raise _bad_prefix_error(f"stored credentials {str(path)!r}", key)
    return key


def configure_logging(level: str | None) -> None:
    """Apply ``TINKER_LOG``: configure the ``tinkex`` logger at ``level`` (no-op for ``None``).

    Adds a stderr handler to the ``tinkex`` logger only if it has none, so calling it again
    (one call per client) is harmless.
    """
    if level is None or level not in _LOG_LEVELS:
        return
    logger = logging.getLogger("tinkex")
    logger.setLevel(_LOG_LEVELS[level])
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
