"""Download a checkpoint's files from Python (what ``tinkex checkpoint download`` runs).

::

    from tinkex.checkpoint_download import download_checkpoint

    result = download_checkpoint("tinker://RUN/weights/final", "./models")
    print(result.destination, result.files)  # ./models/RUN_weights_final, [...]

The files land in ``DEST/<path without tinker:// and with / as _>`` (the directory name the
official ``tinker checkpoint download`` creates), through a staging directory next to it, so a
failed download leaves nothing half-written and ``force=True`` replaces an old copy only once
the new one is complete. Three routes, by checkpoint kind:

* ``external_weights``: the signed per-file URLs of ``RestClient.get_external_weights_urls``
  (re-signed when they are about to expire).
* ``weights`` (training checkpoints): exported the way the official CLI does it — a training
  client is created from the checkpoint, ``save_weights_external`` writes a temporary export
  (one hour TTL, renewed while downloading), its files are downloaded, the export is deleted
  and the session closed. The result is a PEFT adapter (``adapter_config.json``,
  ``adapter_model.safetensors``). Servers without that export fall back to the archive route.
* ``sampler_weights``: the checkpoint archive (:func:`get_checkpoint_archive_url`, the
  ``GET …/archive`` endpoint of the 0.25 API: a redirect to a signed URL, a ``{url, expires}``
  answer, or — on the tinkex local server — the tar itself), extracted safely.

Credentials (``X-API-Key`` and the other configured headers) are sent only to the API's own
origin. A redirect to another origin (a signed storage URL) is followed without them; signed
URLs never receive them at all. Archives are extracted only after every member was checked:
regular files and directories inside the target, nothing else (:func:`safe_extract_tar`).
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import email.utils
import os
import posixpath
import shutil
import tarfile
import tempfile
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import attrs

from tinkex._exceptions import APIStatusError, TinkerError, make_status_error, shorten_body

if TYPE_CHECKING:
    from tinkex import RestClient
    from tinkex._config import ClientSettings

__all__ = [
    "CheckpointArchiveUrlResponse",
    "DownloadError",
    "DownloadResult",
    "ProgressCallback",
    "UnsafeArchiveError",
    "checkpoint_dir_name",
    "download_checkpoint",
    "download_file",
    "get_checkpoint_archive_url",
    "safe_extract_tar",
    "safe_join",
]

#: ``progress(name, bytes_done, bytes_total_or_None)``, called as each file's bytes arrive.
ProgressCallback = Callable[[str, int, "int | None"], None]

_CHUNK = 1 << 16
_TIMEOUT = (10.0, 60.0)
_MAX_REDIRECTS = 10
#: Lifetime of the temporary export a training checkpoint is downloaded through.
EXPORT_TTL_SECONDS = 3600
#: Signed URLs are re-signed when fewer than this many seconds of validity are left.
_RESIGN_MARGIN = _dt.timedelta(minutes=5)
_CREDENTIAL_HEADERS = ("x-api-key", "authorization", "cookie", "proxy-authorization")


class DownloadError(TinkerError):
    """A download failed: the message names the URL (without its query) and the reason."""


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the target directory, or is a link or a device."""


@attrs.frozen(kw_only=True)
class CheckpointArchiveUrlResponse:
    """Where a checkpoint's archive can be fetched, and until when.

    Attributes:
        url: the archive's URL (signed storage, or the API endpoint itself).
        expires: when a signed URL stops working (None when the server does not say).
        needs_credentials: True when ``url`` is on the API's own origin and wants the API key.
    """

    url: str
    expires: _dt.datetime | None = None
    needs_credentials: bool = False


@dataclasses.dataclass(frozen=True)
class DownloadResult:
    """Where a checkpoint landed, its files (relative paths, sorted) and their total size."""

    checkpoint_path: str
    destination: str
    files: list[str]
    size_bytes: int


def checkpoint_dir_name(tinker_path: str) -> str:
    """``tinker://run-1:train:0/weights/final`` -> ``run-1:train:0_weights_final``.

    The name the official CLI gives the download directory (refused when it would not be one
    safe path segment).
    """
    name = tinker_path.removeprefix("tinker://").replace("/", "_")
    if name in ("", ".", "..") or "\\" in name or "\0" in name:
        raise ValueError(f"cannot name a download directory after {tinker_path!r}")
    return name


def download_checkpoint(
    tinker_path: str,
    dest: str | os.PathLike[str] = ".",
    *,
    rest_client: RestClient | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> DownloadResult:
    """Download the checkpoint ``tinker_path`` into ``dest/<checkpoint_dir_name>``.

    Args:
        tinker_path: ``tinker://RUN/weights/NAME``, ``…/sampler_weights/NAME`` or
            ``…/external_weights/NAME``.
        dest: the parent directory (created if missing).
        rest_client: the client to use; by default one is made from ``base_url``/``api_key``
            (else ``TINKER_BASE_URL``/``TINKER_API_KEY``) and closed afterwards.
        force: replace an existing target directory (only once the new copy is complete).
        progress: called with ``(file name, bytes so far, total bytes or None)``.

    Raises:
        FileExistsError: the target exists and ``force`` is false.
        ValueError: ``tinker_path`` is not a checkpoint path.
        DownloadError / UnsafeArchiveError: a file could not be fetched, or an archive member
            is unsafe (nothing is written then).
        APIStatusError / APIConnectionError: the server refused or could not be reached.
    """
    import tinkex
    from tinkex.types import ParsedCheckpointTinkerPath

    parsed = ParsedCheckpointTinkerPath.from_tinker_path(tinker_path)
    parent = os.fspath(dest)
    destination = os.path.join(parent, checkpoint_dir_name(tinker_path))
    if os.path.lexists(destination) and not force:
        raise FileExistsError(f"{destination} already exists; pass force=True to replace it")
    os.makedirs(parent, exist_ok=True)
    owned = rest_client is None
    rest = rest_client or tinkex.RestClient(base_url=base_url, api_key=api_key)
    staging = tempfile.mkdtemp(prefix=".tinkex-download-", dir=parent)
    try:
        _fetch(rest, parsed, staging, progress)
        files = _list_files(staging)
        if os.path.lexists(destination):
            _remove(destination)
        os.replace(staging, destination)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
        if owned:
            rest.close()
    size = sum(os.path.getsize(os.path.join(destination, f)) for f in files)
    return DownloadResult(tinker_path, destination, files, size)


def _fetch(
    rest: RestClient,
    parsed: Any,
    staging: str,
    progress: ProgressCallback | None,
) -> None:
    kind = parsed.checkpoint_type
    if kind == "external":
        _download_external(rest, parsed.tinker_path, staging, progress)
    elif kind == "training":
        try:
            _export_and_download(rest, parsed.tinker_path, staging, progress)
        except APIStatusError as exc:
            if exc.status_code not in (404, 405, 501):
                raise
            _download_archive(rest, parsed.tinker_path, staging, progress)
    else:
        _download_archive(rest, parsed.tinker_path, staging, progress)


def _download_external(
    rest: RestClient,
    tinker_path: str,
    directory: str,
    progress: ProgressCallback | None,
    *,
    renew_ttl: int | None = None,
) -> None:
    """Every file of an ``external_weights`` checkpoint, re-signing URLs about to expire."""

    def sign() -> Any:
        signed = rest.get_external_weights_urls(tinker_path).result()
        if renew_ttl is not None:
            rest.set_checkpoint_ttl_from_tinker_path(tinker_path, renew_ttl).result()
        return signed

    signed = sign()
    if not signed.urls:
        raise DownloadError(f"the external weights checkpoint {tinker_path} has no files")
    targets = {name: safe_join(directory, name) for name in signed.urls}  # all checked first
    for name in sorted(targets):
        expires = _aware(signed.expires)
        if expires is not None and _dt.datetime.now(_dt.UTC) >= expires - _RESIGN_MARGIN:
            signed = sign()
        os.makedirs(os.path.dirname(targets[name]), exist_ok=True)
        download_file(signed.urls[name], targets[name], name=name, progress=progress)


def _export_and_download(
    rest: RestClient, tinker_path: str, directory: str, progress: ProgressCallback | None
) -> None:
    """The official route for training checkpoints: a temporary external-weights export."""
    import tinkex

    settings = rest.holder.settings
    service = tinkex.ServiceClient(base_url=settings.base_url, api_key=settings.api_key)
    status: Literal["success", "errored"] = "errored"
    try:
        training = service.create_training_client_from_state(
            tinker_path, user_metadata={"created_by": "tinkex checkpoint download"}
        ).result()
        name = f"download-{uuid.uuid4().hex[:8]}"
        export = training.save_weights_external(name, ttl_seconds=EXPORT_TTL_SECONDS).result()
        try:
            _download_external(rest, export.path, directory, progress, renew_ttl=EXPORT_TTL_SECONDS)
        finally:
            try:
                rest.delete_checkpoint_from_tinker_path(export.path).result()
            except Exception:  # it expires within the hour anyway; the download is what counts
                pass
        status = "success"
    finally:
        service.close(status)


def _download_archive(
    rest: RestClient, tinker_path: str, directory: str, progress: ProgressCallback | None
) -> None:
    archive = get_checkpoint_archive_url(rest.holder.settings, tinker_path)
    path = os.path.join(directory, ".archive.tar")
    try:
        download_file(
            archive.url,
            path,
            name="archive",
            progress=progress,
            headers=_api_headers(rest.holder.settings) if archive.needs_credentials else None,
            credentials_origin=rest.holder.settings.base_url,
        )
        safe_extract_tar(path, directory)
    finally:
        if os.path.exists(path):
            os.remove(path)


def get_checkpoint_archive_url(
    settings: ClientSettings, tinker_path: str
) -> CheckpointArchiveUrlResponse:
    """Ask ``GET /api/v1/training_runs/{run}/checkpoints/{kind}/{name}/archive`` where the
    archive is (``RestClient.get_checkpoint_archive_url*`` run this on their worker pool).

    Understands the three answers servers give: a redirect (``Location`` + ``Expires``), a JSON
    ``{"url", "expires"}``, or the archive itself (then the endpoint is the URL, with the API
    key). Redirects are not followed here, so the key never leaves the API's origin.

    Raises:
        APIStatusError: the server refused (404: no such checkpoint or no archive endpoint).
        APIConnectionError: the server could not be reached.
    """
    import requests

    from tinkex._exceptions import APIConnectionError
    from tinkex.types import ParsedCheckpointTinkerPath

    parsed = ParsedCheckpointTinkerPath.from_tinker_path(tinker_path)
    kind, name = parsed.checkpoint_id.split("/", 1)
    run = urllib.parse.quote(parsed.training_run_id, safe="")
    path = f"/api/v1/training_runs/{run}/checkpoints/{kind}/{urllib.parse.quote(name, safe='')}"
    endpoint = f"{settings.base_url}{path}/archive"
    label = f"GET {path}/archive"
    try:
        response = requests.get(
            endpoint,
            headers=_api_headers(settings),
            timeout=_TIMEOUT,
            allow_redirects=False,
            stream=True,
        )
    except requests.RequestException as exc:
        raise APIConnectionError(label, message=f"{label} failed: {exc}") from None
    with response:
        status = response.status_code
        if 300 <= status < 400 and response.headers.get("Location"):
            return CheckpointArchiveUrlResponse(
                url=urllib.parse.urljoin(endpoint, response.headers["Location"]),
                expires=_http_date(response.headers.get("Expires")),
            )
        if status >= 300:
            raise make_status_error(
                status,
                _error_body(response),
                request=label,
                request_id=response.headers.get("x-request-id"),
            )
        content_type = response.headers.get("Content-Type", "")
        if "json" in content_type:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("url"), str):
                expires = body.get("expires")
                return CheckpointArchiveUrlResponse(
                    url=urllib.parse.urljoin(endpoint, body["url"]),
                    expires=_dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
                    if isinstance(expires, str)
                    else None,
                )
            raise DownloadError(f"{label} answered JSON without a 'url': {shorten_body(body)}")
        return CheckpointArchiveUrlResponse(url=endpoint, needs_credentials=True)


def download_file(
    url: str,
    target: str,
    *,
    name: str | None = None,
    progress: ProgressCallback | None = None,
    headers: Mapping[str, str] | None = None,
    credentials_origin: str | None = None,
) -> int:
    """Stream ``url`` into ``target``; returns the number of bytes written.

    ``headers`` are sent only while the request stays on the origin of ``credentials_origin``
    (default: ``url``'s own): a redirect elsewhere is followed without them (``requests``
    itself would drop only ``Authorization``, not ``X-API-Key``).
    """
    import requests

    label = name or os.path.basename(target)
    origin = _origin(credentials_origin or url)
    current = url
    with requests.Session() as session:
        session.trust_env = True
        for _ in range(_MAX_REDIRECTS + 1):
            sent = dict(headers or {}) if _origin(current) == origin else {}
            try:
                response = session.get(
                    current, headers=sent, stream=True, timeout=_TIMEOUT, allow_redirects=False
                )
            except requests.RequestException as exc:
                raise DownloadError(f"download of {_redact(current)} failed: {exc}") from None
            with response:
                location = response.headers.get("Location")
                if response.is_redirect and location:
                    current = urllib.parse.urljoin(current, location)
                    continue
                if response.status_code >= 400:
                    raise DownloadError(
                        f"download of {_redact(current)} failed: HTTP {response.status_code}"
                        f"{_error_suffix(response)}"
                    )
                return _stream_to(response, target, label, progress)
    raise DownloadError(f"download of {_redact(url)} failed: more than {_MAX_REDIRECTS} redirects")


def _stream_to(response: Any, target: str, label: str, progress: ProgressCallback | None) -> int:
    length = response.headers.get("Content-Length")
    total = int(length) if length and length.isdigit() else None
    written = 0
    if progress is not None:
        progress(label, 0, total)
    with open(target, "wb") as handle:
        for chunk in response.iter_content(_CHUNK):
            handle.write(chunk)
            written += len(chunk)
            if progress is not None:
                progress(label, written, total)
    if total is not None and written != total:
        raise DownloadError(f"download of {label} ended after {written} of {total} bytes")
    return written


def safe_join(directory: str, relative: str) -> str:
    """``directory/relative``, refusing absolute paths, ``..`` and anything that escapes."""
    normalized = posixpath.normpath(relative.replace("\\", "/"))
    if (
        not relative
        or relative.startswith(("/", "\\"))
        or os.path.isabs(relative)
        or normalized in (".", "..")
        or normalized.startswith("../")
        or ":" in normalized.split("/", 1)[0]
    ):
        raise UnsafeArchiveError(f"refusing to write outside the download directory: {relative!r}")
    root = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(root, *normalized.split("/")))
    if os.path.commonpath([root, target]) != root:
        raise UnsafeArchiveError(f"refusing to write outside the download directory: {relative!r}")
    return target


def safe_extract_tar(archive: str, directory: str) -> list[str]:
    """Extract the regular files and directories of a tar into ``directory``.

    Every member is checked before anything is written.

    Returns:
        The extracted files, relative to ``directory``.

    Raises:
        UnsafeArchiveError: a member has an absolute path or ``..``, or is a link or a device.
        DownloadError: the file is not a tar archive.
    """
    files: list[str] = []
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the with block below
    except tarfile.TarError as exc:
        raise DownloadError(f"the downloaded archive is not a valid tar file: {exc}") from None
    with tar:
        members = tar.getmembers()
        for member in members:
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(
                    f"refusing to extract {member.name!r}: only files and directories are allowed"
                )
            safe_join(directory, member.name)
        for member in members:
            target = safe_join(directory, member.name)
            if member.isdir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                continue
            with source, open(target, "wb") as handle:
                shutil.copyfileobj(source, handle, _CHUNK)
            files.append(os.path.relpath(target, directory))
    return files


def _api_headers(settings: ClientSettings) -> dict[str, str]:
    """The headers that authenticate with the API (only ever sent to its origin)."""
    headers = {**settings.access_headers, **settings.default_headers}
    if settings.api_key:
        headers["X-API-Key"] = settings.api_key
    return headers


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _list_files(directory: str) -> list[str]:
    found: list[str] = []
    for root, _dirs, names in os.walk(directory):
        found.extend(os.path.relpath(os.path.join(root, n), directory) for n in names)
    return sorted(found)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def _aware(value: _dt.datetime | None) -> _dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=_dt.UTC)


def _http_date(value: str | None) -> _dt.datetime | None:
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def _error_body(response: Any) -> object:
    try:
        return response.json()
    except ValueError:
        return shorten_body(response.content[:65536])


def _error_suffix(response: Any) -> str:
    body = _error_body(response)
    if isinstance(body, dict) and body.get("detail"):
        return f" ({' '.join(str(body['detail']).split())})"
    text = str(shorten_body(body)) if body else ""
    return f" ({text})" if text else ""


def _redact(url: str) -> str:
    """A URL without its query string (signed URLs carry credentials there)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
