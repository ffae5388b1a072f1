"""``RestClient`` and ``AdminClient``: training runs, checkpoints, sessions, billing."""

from __future__ import annotations

import datetime as dt
import time
import uuid
import warnings
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from tinkex._deprecation import async_twin, warn_deprecated
from tinkex._exceptions import ExperimentalWarning, TinkerError
from tinkex._futures import APIFuture
from tinkex._transport.sdk_method import public_method
from tinkex.clients._sessionless import SessionlessClient as _SessionlessClient
from tinkex.types import _rest as rest
from tinkex.types import _session as ses
from tinkex.types._converter import from_wire, to_wire

if TYPE_CHECKING:
    from tinkex.checkpoint_download import CheckpointArchiveUrlResponse

__all__ = ["RestClient", "AdminClient"]

T = TypeVar("T")
AccessScope = Literal["owned", "accessible"]
AuditEventType = Literal["all", "checkpoints", "projects", "teams", "organizations"]
_TRACE_POLL_INTERVAL = 5.0
_TRACE_TIMEOUT = 600.0


def _checkpoint_url_part(tinker_path: str) -> tuple[str, str]:
    parsed = rest.ParsedCheckpointTinkerPath.from_tinker_path(tinker_path)
    return parsed.training_run_id, parsed.checkpoint_id


class RestClient(_SessionlessClient):
    """Read and manage training runs, checkpoints and sessions.

    Every method returns an :class:`~tinkex.APIFuture`::

        runs = tinkex.RestClient().list_training_runs(limit=10).result()
    """

    _name = "RestClient"

    # -- capabilities and runs -----------------------------------------------------------------
    def health_check(self) -> APIFuture[rest.HealthResponse]:
        """``GET /api/v1/healthz``: ``HealthResponse(status="ok")`` when the service is up.

        A tinkex extension (Elixir Tinkex's ``health_check``; the official SDK has the
        endpoint but no client method). Retried like every request; an unhealthy service
        fails the future with the error it answered.
        """
        return self._run(lambda: self._get("/api/v1/healthz", rest.HealthResponse, "health_check"))

    def get_server_capabilities(self) -> APIFuture[rest.GetServerCapabilitiesResponse]:
        """Models the server supports."""
        return self._run(
            lambda: self._get(
                "/api/v1/get_server_capabilities",
                rest.GetServerCapabilitiesResponse,
                "get_server_capabilities",
            ),
        )

    def get_training_run(
        self, training_run_id: str, access_scope: AccessScope = "owned"
    ) -> APIFuture[rest.TrainingRun]:
        """One training run."""
        return self._run(
            lambda: self._get(
                f"/api/v1/training_runs/{training_run_id}",
                rest.TrainingRun,
                "get_training_run",
                {"access_scope": access_scope},
            ),
        )

    @public_method
    def get_training_run_by_tinker_path(
        self, tinker_path: str, access_scope: AccessScope = "owned"
    ) -> APIFuture[rest.TrainingRun]:
        """The training run a checkpoint path belongs to."""
        run_id, _ = _checkpoint_url_part(tinker_path)
        return self.get_training_run(run_id, access_scope)

    def get_weights_info_by_tinker_path(
        self, tinker_path: str
    ) -> APIFuture[rest.WeightsInfoResponse]:
        """Base model and LoRA settings behind a checkpoint."""
        _checkpoint_url_part(tinker_path)
        return self._run(
            lambda: self.holder.call(
                "POST",
                "/api/v1/weights_info",
                rest.WeightsInfoResponse,
                body={"tinker_path": tinker_path},
                sdk_method="RestClient.get_weights_info_by_tinker_path",
            ),
        )

    def list_training_runs(
        self,
        limit: int = 20,
        offset: int = 0,
        access_scope: AccessScope = "owned",
        project_id: str | None = None,
    ) -> APIFuture[rest.TrainingRunsResponse]:
        """A page of training runs (newest first)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset, "access_scope": access_scope}
        if project_id is not None:
            params["project_id"] = project_id
        return self._run(
            lambda: self._get(
                "/api/v1/training_runs", rest.TrainingRunsResponse, "list_training_runs", params
            ),
        )

    # -- checkpoints -------------------------------------------------------------------------------
    def list_checkpoints(self, training_run_id: str) -> APIFuture[rest.CheckpointsListResponse]:
        """Checkpoints of one training run."""
        return self._run(
            lambda: self._get(
                f"/api/v1/training_runs/{training_run_id}/checkpoints",
                rest.CheckpointsListResponse,
                "list_checkpoints",
            ),
        )

    def list_user_checkpoints(
        self, limit: int = 100, offset: int = 0
    ) -> APIFuture[rest.CheckpointsListResponse]:
        """A page of all your checkpoints (newest first)."""
        return self._run(
            lambda: self._get(
                "/api/v1/checkpoints",
                rest.CheckpointsListResponse,
                "list_user_checkpoints",
                {"limit": limit, "offset": offset},
            ),
        )

    def get_external_weights_urls(
        self, tinker_path: str
    ) -> APIFuture[rest.ExternalWeightsUrlsResponse]:
        """Signed download URLs of an ``external_weights`` export.

        Raises:
            ValueError: ``tinker_path`` is not an ``external_weights`` path.
        """
        parsed = rest.ParsedCheckpointTinkerPath.from_tinker_path(tinker_path)
        if parsed.checkpoint_type != "external":
            raise ValueError(
                f"get_external_weights_urls needs a tinker://<run>/external_weights/<name> "
                f"path, got {tinker_path!r}"
            )
        return self._run(
            lambda: self._get(
                f"/api/v1/training_runs/{parsed.training_run_id}/checkpoints/"
                f"{parsed.checkpoint_id}/external_weights_urls",
                rest.ExternalWeightsUrlsResponse,
                "get_external_weights_urls",
            ),
        )

    def get_checkpoint_archive_url(
        self, training_run_id: str, checkpoint_id: str
    ) -> APIFuture[CheckpointArchiveUrlResponse]:
        """Where the archive of checkpoint ``checkpoint_id`` (``weights/NAME`` or
        ``sampler_weights/NAME``) can be downloaded (tinkex extra; see
        :mod:`tinkex.checkpoint_download`, which also downloads it)."""
        return self.get_checkpoint_archive_url_from_tinker_path(
            f"tinker://{training_run_id}/{checkpoint_id}"
        )

    def get_checkpoint_archive_url_from_tinker_path(
        self, tinker_path: str
    ) -> APIFuture[CheckpointArchiveUrlResponse]:
        """:meth:`get_checkpoint_archive_url` for a ``tinker://`` path."""
        from tinkex.checkpoint_download import get_checkpoint_archive_url

        _checkpoint_url_part(tinker_path)
        settings = self.holder.settings
        return self._run(lambda: get_checkpoint_archive_url(settings, tinker_path))

    def delete_checkpoint(self, training_run_id: str, checkpoint_id: str) -> APIFuture[None]:
        """Delete a checkpoint (``checkpoint_id`` like ``weights/step-10``)."""
        return self._run(
            lambda: self._send(
                "DELETE",
                f"/api/v1/training_runs/{training_run_id}/checkpoints/{checkpoint_id}",
                "delete_checkpoint",
            ),
        )

    @public_method
    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Delete the checkpoint at ``tinker_path``."""
        return self.delete_checkpoint(*_checkpoint_url_part(tinker_path))

    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Make a checkpoint public."""
        run_id, cid = _checkpoint_url_part(tinker_path)
        return self._run(
            lambda: self._send(
                "POST",
                f"/api/v1/training_runs/{run_id}/checkpoints/{cid}/publish",
                "publish_checkpoint_from_tinker_path",
            ),
        )

    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Make a checkpoint private."""
        run_id, cid = _checkpoint_url_part(tinker_path)
        return self._run(
            lambda: self._send(
                "DELETE",
                f"/api/v1/training_runs/{run_id}/checkpoints/{cid}/publish",
                "unpublish_checkpoint_from_tinker_path",
            ),
        )

    def set_checkpoint_ttl_from_tinker_path(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> APIFuture[None]:
        """Set (or with None remove) the expiry of a checkpoint."""
        if ttl_seconds is not None and (not isinstance(ttl_seconds, int) or ttl_seconds <= 0):
            raise ValueError(f"ttl_seconds must be a positive int or None, got {ttl_seconds!r}")
        run_id, cid = _checkpoint_url_part(tinker_path)
        return self._run(
            lambda: self._send(
                "PUT",
                f"/api/v1/training_runs/{run_id}/checkpoints/{cid}/ttl",
                "set_checkpoint_ttl_from_tinker_path",
                {"ttl_seconds": ttl_seconds},
            ),
        )

    def copy_weights(
        self,
        path: str,
        destination_project_id: str | None = None,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> APIFuture[str]:
        """Copy a checkpoint into a project; future of the copy's ``tinker://`` path.

        Raises:
            ValueError: no destination project (argument or ``TINKER_PROJECT_ID``).
        """
        project = destination_project_id or self.holder.settings.project_id
        if not project:
            raise ValueError(
                "copy_weights needs destination_project_id (or TINKER_PROJECT_ID to be set)"
            )
        _checkpoint_url_part(path)
        request = rest.CopyWeightsRequest(
            source_path=path, destination_project_id=project, ttl_seconds=ttl_seconds
        )
        headers = {"X-Idempotency-Key": str(uuid.uuid4())}
        if weights_access_token is not None:
            headers["X-Tinker-Weights-Access-Token"] = weights_access_token

        def copy() -> str:
            response = self.holder.request(
                "POST",
                "/api/v1/copy_weights",
                json=to_wire(request),
                headers=headers,
                sdk_method="RestClient.copy_weights",
            )
            return from_wire(
                response.json(), rest.CopyWeightsResponse, request="POST /api/v1/copy_weights"
            ).tinker_path

        return self._run(copy)

    # -- sessions ----------------------------------------------------------------------------------
    def get_session(
        self, session_id: str, access_scope: AccessScope = "owned"
    ) -> APIFuture[ses.GetSessionResponse]:
        """Training runs and samplers of a session."""
        return self._run(
            lambda: self._get(
                f"/api/v1/sessions/{session_id}",
                ses.GetSessionResponse,
                "get_session",
                {"access_scope": access_scope},
            ),
        )

    def list_sessions(
        self, limit: int = 20, offset: int = 0, access_scope: AccessScope = "owned"
    ) -> APIFuture[ses.ListSessionsResponse]:
        """A page of session ids."""
        return self._run(
            lambda: self._get(
                "/api/v1/sessions",
                ses.ListSessionsResponse,
                "list_sessions",
                {"limit": limit, "offset": offset, "access_scope": access_scope},
            ),
        )

    def assign_session_project(self, session_id: str, project_id: str) -> APIFuture[None]:
        """Move a session to a project."""
        return self._run(
            lambda: self._send(
                "PUT",
                f"/api/v1/sessions/{session_id}/project",
                "assign_session_project",
                {"project_id": project_id},
            ),
        )

    def export_session_trace(self, session_id: str) -> APIFuture[str]:
        """Export a session's trace; future of a download URL (polls until ready)."""

        def export() -> str:
            deadline = time.monotonic() + _TRACE_TIMEOUT
            while True:
                body = self.holder.request(
                    "GET",
                    f"/api/v1/sessions/{session_id}/trace_export",
                    sdk_method="RestClient.export_session_trace",
                ).json()
                status = body.get("status")
                if status == "ready":
                    return str(body["url"])
                if status == "failed":
                    raise RuntimeError(
                        f"trace export of session {session_id} failed: {body.get('error')}"
                    )
                if time.monotonic() > deadline:
                    raise TimeoutError(f"trace export of session {session_id} not ready")
                if self.holder.stop_event.wait(_TRACE_POLL_INTERVAL):
                    raise RuntimeError("client closed while waiting for the trace export")

        return self._run(export)

    def search_sessions(
        self, request: ses.SessionSearchRequest
    ) -> APIFuture[ses.SessionSearchResponse]:
        """EXPERIMENTAL: search sessions by owner, status, metadata, name."""
        warnings.warn("search_sessions is experimental", ExperimentalWarning, stacklevel=2)
        return self._run(
            lambda: self.holder.call(
                "POST",
                "/api/v1/sessions/search",
                ses.SessionSearchResponse,
                body=request,
                sdk_method="RestClient.search_sessions",
            ),
        )

    def whoami(self) -> APIFuture[rest.WhoamiResponse]:
        """The authenticated principal, from the claims of the JWT in use.

        Raises:
            RuntimeError: (from the future) the server uses plain API keys (no JWT).
        """

        def who() -> rest.WhoamiResponse:
            if not self.holder.client_config().pjwt_auth_enabled:
                raise RuntimeError(
                    "whoami needs JWT authentication, which this server does not use"
                )
            claims = self.holder.transport.jwt_claims()
            if claims is None:
                raise RuntimeError("whoami: no JWT is in use for this client")
            return whoami_from_claims(claims)

        return self._run(who)

    def get_sampler(self, sampler_id: str) -> APIFuture[Any]:
        """What the server knows about a sampler."""
        from tinkex.types import GetSamplerResponse

        return self._run(
            lambda: self._get(f"/api/v1/samplers/{sampler_id}", GetSamplerResponse, "get_sampler"),
        )

    # -- deprecated admin forwards -----------------------------------------------------------------
    def _admin(self, name: str) -> AdminClient:
        warn_deprecated(f"RestClient.{name}", f"use AdminClient().{name}", stacklevel=4)
        return AdminClient(_holder=self.holder)

    def get_audit_log(
        self,
        event_type: AuditEventType = "all",
        day: dt.date | None = None,
    ) -> APIFuture[rest.AuditLogResponse]:
        """DEPRECATED: use ``AdminClient().get_audit_log``."""
        return self._admin("get_audit_log").get_audit_log(event_type, day)

    def get_billing_usage(
        self, starting_on: dt.datetime | str, ending_before: dt.datetime | str
    ) -> APIFuture[rest.BillingUsageResponse]:
        """DEPRECATED: use ``AdminClient().get_billing_usage``."""
        return self._admin("get_billing_usage").get_billing_usage(starting_on, ending_before)

    def get_current_checkpoint_storage_usage(
        self, project_id: str | None = None
    ) -> APIFuture[rest.CurrentCheckpointStorageUsageResponse]:
        """DEPRECATED: use ``AdminClient().get_current_checkpoint_storage_usage``."""
        return self._admin(
            "get_current_checkpoint_storage_usage"
        ).get_current_checkpoint_storage_usage(project_id)

    # -- deprecated async twins --------------------------------------------------------------------
    get_training_run_async = async_twin(get_training_run)
    get_training_run_by_tinker_path_async = async_twin(get_training_run_by_tinker_path)
    list_training_runs_async = async_twin(list_training_runs)
    list_checkpoints_async = async_twin(list_checkpoints)
    list_user_checkpoints_async = async_twin(list_user_checkpoints)
    get_external_weights_urls_async = async_twin(get_external_weights_urls)
    delete_checkpoint_async = async_twin(delete_checkpoint)
    delete_checkpoint_from_tinker_path_async = async_twin(delete_checkpoint_from_tinker_path)
    publish_checkpoint_from_tinker_path_async = async_twin(publish_checkpoint_from_tinker_path)
    unpublish_checkpoint_from_tinker_path_async = async_twin(unpublish_checkpoint_from_tinker_path)
    set_checkpoint_ttl_from_tinker_path_async = async_twin(set_checkpoint_ttl_from_tinker_path)
    copy_weights_async = async_twin(copy_weights)
    get_session_async = async_twin(get_session)
    list_sessions_async = async_twin(list_sessions)
    assign_session_project_async = async_twin(assign_session_project)
    export_session_trace_async = async_twin(export_session_trace)
    get_sampler_async = async_twin(get_sampler)
    get_audit_log_async = async_twin(get_audit_log)
    get_billing_usage_async = async_twin(get_billing_usage)
    get_current_checkpoint_storage_usage_async = async_twin(get_current_checkpoint_storage_usage)


def whoami_from_claims(claims: dict[str, Any]) -> rest.WhoamiResponse:
    """``WhoamiResponse`` from JWT claims ``sub``, ``org_id`` and ``email``.

    Raises:
        TinkerError: the claims do not say who you are.
    """
    sub = claims.get("sub")
    org = claims.get("org_id")
    if not isinstance(sub, str) or org is None:
        raise TinkerError("the JWT has no 'sub'/'org_id' claims to tell who you are")
    email = claims.get("email") or None
    return rest.WhoamiResponse(user_urn=sub, org_urn=f"tml:organization:{org}", email=email)


def _rfc3339(value: dt.datetime | str, name: str) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, dt.datetime):
        raise TypeError(f"{name} must be a datetime or an RFC 3339 string, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


class AdminClient(_SessionlessClient):
    """Audit log, billing usage and checkpoint storage of your organization."""

    _name = "AdminClient"

    def get_audit_log(
        self,
        event_type: AuditEventType = "all",
        day: dt.date | None = None,
    ) -> APIFuture[rest.AuditLogResponse]:
        """Audit-log entries (optionally of one UTC day)."""
        params: dict[str, Any] = {"event_type": event_type}
        if day is not None:
            params["day"] = day.isoformat()
        return self._run(
            lambda: self._get("/api/v1/audit", rest.AuditLogResponse, "get_audit_log", params)
        )

    def get_billing_usage(
        self, starting_on: dt.datetime | str, ending_before: dt.datetime | str
    ) -> APIFuture[rest.BillingUsageResponse]:
        """Usage events in ``[starting_on, ending_before)`` (hour-aligned UTC, <= 14 days)."""
        params = {
            "starting_on": _rfc3339(starting_on, "starting_on"),
            "ending_before": _rfc3339(ending_before, "ending_before"),
        }
        return self._run(
            lambda: self._get(
                "/api/v1/billing/usage/events",
                rest.BillingUsageResponse,
                "get_billing_usage",
                params,
            ),
        )

    def get_current_checkpoint_storage_usage(
        self, project_id: str | None = None
    ) -> APIFuture[rest.CurrentCheckpointStorageUsageResponse]:
        """Checkpoint storage per project/user."""
        params = {"project_id": project_id} if project_id is not None else None
        return self._run(
            lambda: self._get(
                "/api/v1/billing/usage/checkpoints/current",
                rest.CurrentCheckpointStorageUsageResponse,
                "get_current_checkpoint_storage_usage",
                params,
            ),
        )

    # -- deprecated async twins --------------------------------------------------------------------
    get_audit_log_async = async_twin(get_audit_log)
    get_billing_usage_async = async_twin(get_billing_usage)
    get_current_checkpoint_storage_usage_async = async_twin(get_current_checkpoint_storage_usage)
