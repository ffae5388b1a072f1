"""Checkpoint downloads for ``tinkex checkpoint download``: HTTP with a progress bar, and
archive extraction that cannot write outside the target directory.

Two sources, tried in this order:

* ``external_weights`` paths: the official 0.38 flow, one signed URL per file
  (``RestClient.get_external_weights_urls``).
* ``weights`` / ``sampler_weights`` paths: the checkpoint archive (a tar) that the tinkex local
  server serves at ``GET /api/v1/training_runs/{run}/checkpoints/{kind}/{name}/archive``. When a
  server has no archive endpoint (404/405), a training checkpoint is exported the way the
  official CLI does it: a temporary ``save_weights_external`` copy is made from a training client
  created from the checkpoint, downloaded, then deleted.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import shutil
import tarfile
import tempfile
import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tinkex.cli._context import CommandError, Context
from tinkex.cli._progress import ProgressBar

if TYPE_CHECKING:
    from tinkex.types import ParsedCheckpointTinkerPath

_CHUNK = 1 << 16
_TIMEOUT = 60.0


@dataclasses.dataclass
class DownloadResult:
    """Where a checkpoint landed, which files it has (relative paths) and their total size."""

    destination: str
    files: list[str]
    size_bytes: int


class UnsafeArchiveError(CommandError):
    """An archive member would be written outside the target directory (or is a link/device)."""


def target_directory_name(parsed: ParsedCheckpointTinkerPath) -> str:
    """``tinker://run:1/weights/final`` -> ``run_1_weights_final`` (safe as one path segment)."""
    raw = f"{parsed.training_run_id}_{parsed.checkpoint_id}"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in raw).strip(".") or "ckpt"


def download_checkpoint(
    ctx: Context, parsed: ParsedCheckpointTinkerPath, output: str, *, force: bool = False
) -> DownloadResult:
    """Download the checkpoint ``parsed`` into ``output/<target_directory_name>``."""
    destination = os.path.abspath(os.path.join(output, target_directory_name(parsed)))
    if os.path.exists(destination) and not force:
        raise CommandError(f"{destination} already exists; pass --force to replace it")
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tinkex-download-", dir=os.path.dirname(destination))
    try:
        files = _fetch_into(ctx, parsed, staging)
        if os.path.exists(destination):
            shutil.rmtree(destination) if os.path.isdir(destination) else os.remove(destination)
        os.replace(staging, destination)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    size = sum(os.path.getsize(os.path.join(destination, f)) for f in files)
    return DownloadResult(destination, sorted(files), size)


def _fetch_into(ctx: Context, parsed: ParsedCheckpointTinkerPath, staging: str) -> list[str]:
    kind = parsed.checkpoint_id.split("/", 1)[0]
    if kind == "external_weights":
        urls = ctx.rest().get_external_weights_urls(parsed.tinker_path).result().urls
        return download_files(urls, staging)
    if kind not in ("weights", "sampler_weights"):
        raise CommandError(f"cannot download {parsed.tinker_path}: unknown checkpoint kind {kind}")
    archive_url = _archive_url(ctx, parsed)
    archive = os.path.join(staging, ".archive.tar")
    try:
        download_file(archive_url, archive, headers=_auth_headers(ctx), label="download")
    except _NoArchiveEndpoint:
        os.remove(archive) if os.path.exists(archive) else None
        if kind != "weights":
            raise CommandError(
                f"this server cannot download sampler checkpoints ({parsed.tinker_path}); "
                "download a training checkpoint (tinker://RUN/weights/NAME) instead"
            ) from None
        return _export_and_download(ctx, parsed, staging)
    try:
        return safe_extract_tar(archive, staging)
    finally:
        os.remove(archive)


def _archive_url(ctx: Context, parsed: ParsedCheckpointTinkerPath) -> str:
    base_url = _base_url(ctx)
    run = urllib.parse.quote(parsed.training_run_id, safe="")
    kind, name = parsed.checkpoint_id.split("/", 1)
    name = urllib.parse.quote(name, safe="")
    return f"{base_url}/api/v1/training_runs/{run}/checkpoints/{kind}/{name}/archive"


def _base_url(ctx: Context) -> str:
    from tinkex._config import ClientSettings

    settings = ClientSettings.resolve(**ctx.client_kwargs())
    return str(settings.base_url).rstrip("/")


def _auth_headers(ctx: Context) -> dict[str, str]:
    from tinkex._config import ClientSettings

    settings = ClientSettings.resolve(**ctx.client_kwargs())
    return {"X-API-Key": str(settings.api_key)} if settings.api_key else {}


def _export_and_download(
    ctx: Context, parsed: ParsedCheckpointTinkerPath, staging: str
) -> list[str]:
    """The official CLI's route for training checkpoints: a temporary external-weights export."""
    import uuid

    rest = ctx.rest()
    with ctx.service() as service:
        training = service.create_training_client_from_state(parsed.tinker_path).result()
        export = training.save_weights_external(f"download-{uuid.uuid4().hex[:8]}").result()
    try:
        urls = rest.get_external_weights_urls(export.path).result().urls
        return download_files(urls, staging)
    finally:
        try:
            rest.delete_checkpoint_from_tinker_path(export.path).result()
        except Exception:  # the export expires anyway; the download itself succeeded
            pass


class _NoArchiveEndpoint(Exception):
    pass


def download_files(urls: Mapping[str, str], directory: str) -> list[str]:
    """Download ``{relative path: url}`` into ``directory``; relative paths are checked first."""
    targets = {safe_join(directory, rel): url for rel, url in urls.items()}
    for i, (target, url) in enumerate(sorted(targets.items()), 1):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        rel = os.path.relpath(target, directory)
        download_file(url, target, label=f"[{i}/{len(targets)}] {rel}")
    return [os.path.relpath(t, directory) for t in targets]


def download_file(
    url: str, target: str, *, headers: Mapping[str, str] | None = None, label: str = "download"
) -> int:
    """Stream ``url`` into ``target`` with a progress bar; returns the number of bytes.

    Headers (the API key) are only sent when given: signed URLs never receive credentials.
    """
    import requests

    try:
        response = requests.get(url, headers=dict(headers or {}), stream=True, timeout=_TIMEOUT)
    except requests.RequestException as exc:
        raise CommandError(f"download of {_redact(url)} failed: {exc}") from None
    with response:
        if response.status_code in (404, 405) and headers:
            raise _NoArchiveEndpoint()
        if response.status_code >= 400:
            raise CommandError(
                f"download of {_redact(url)} failed: HTTP {response.status_code} "
                f"{_error_detail(response)}".rstrip()
            )
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        written = 0
        with (
            open(target, "wb") as handle,
            ProgressBar(total, label=label, byte_units=True) as bar,
        ):
            for chunk in response.iter_content(_CHUNK):
                handle.write(chunk)
                written += len(chunk)
                bar.update(len(chunk))
    return written


def _error_detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and body.get("detail"):
        return f"({body['detail']})"
    return ""


def _redact(url: str) -> str:
    """A URL without its query string (signed URLs carry credentials there)."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def safe_join(directory: str, relative: str) -> str:
    """``directory/relative``, refusing absolute paths, ``..`` and anything that escapes."""
    normalized = posixpath.normpath(relative.replace("\\", "/"))
    if (
        not relative
        or relative.startswith(("/", "\\"))
        or os.path.isabs(relative)
        or normalized == "."
        or normalized.startswith("../")
        or normalized == ".."
        or ":" in normalized.split("/", 1)[0]
    ):
        raise UnsafeArchiveError(f"refusing to write outside the download directory: {relative!r}")
    root = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(root, *normalized.split("/")))
    if os.path.commonpath([root, target]) != root:
        raise UnsafeArchiveError(f"refusing to write outside the download directory: {relative!r}")
    return target


def safe_extract_tar(archive: str, directory: str) -> list[str]:
    """Extract regular files and directories of a tar into ``directory``; returns the file list.

    Raises:
        UnsafeArchiveError: a member has an absolute path, ``..``, is a link or a device.
    """
    files: list[str] = []
    try:
        tar = tarfile.open(archive, "r:*")  # noqa: SIM115 - closed by the with block below
    except tarfile.TarError as exc:
        raise CommandError(f"the downloaded archive is not a valid tar file: {exc}") from None
    with tar:
        members = tar.getmembers()
        for member in members:  # validate everything before writing anything
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
