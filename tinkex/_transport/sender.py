"""One ``requests.Session`` and how a request goes over it: pool, preparation, redirects.

:class:`Sender` is the only code that touches ``requests``. It mounts an ``HTTPAdapter`` whose
pool holds ``settings.max_connections`` connections and never retries (retries are
``RetryPolicy``'s), sends ``settings.proxy`` (or the environment's proxies) and the proxy
headers, resolves the environment (proxies, CA bundle) once, fills prepared requests
in directly (``Session.request`` would re-merge settings on every call), and follows redirects
within the API's origin only (docs/protocol.md, "Redirects"). ``requests`` is imported when the
first sender is built.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import attrs

from tinkex._config import ClientSettings
from tinkex._exceptions import APIStatusError

if TYPE_CHECKING:
    import requests

__all__ = ["MAX_REDIRECTS", "Outgoing", "Sender"]


@functools.cache
def _adapter_factory() -> Callable[[Mapping[str, str], int], requests.adapters.HTTPAdapter]:
    """Builds the session's ``HTTPAdapter``: it never retries (retries are ``RetryPolicy``'s)
    and sends extra headers to a proxy. Made on first use, so that importing this module does
    not import ``requests``."""
    import requests.adapters

    class ProxyHeadersAdapter(requests.adapters.HTTPAdapter):
        def __init__(self, extra_proxy_headers: Mapping[str, str], **kwargs: Any) -> None:
            #: ``settings.proxy_headers``, over what requests sends a proxy (the
            #: ``Proxy-Authorization`` of a proxy URL's ``user:password@``).
            self.extra_proxy_headers = dict(extra_proxy_headers)
            super().__init__(**kwargs)

        def proxy_headers(self, proxy: str) -> dict[str, str]:
            return {**super().proxy_headers(proxy), **self.extra_proxy_headers}

    def build(proxy_headers: Mapping[str, str], pool_size: int) -> requests.adapters.HTTPAdapter:
        return ProxyHeadersAdapter(
            proxy_headers, pool_connections=4, pool_maxsize=pool_size, max_retries=0
        )

    return build


#: Same-origin redirects followed for one request before giving up (docs/protocol.md, "Redirects").
MAX_REDIRECTS = 5
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Characters that may appear unescaped in our URLs; anything else goes through requote_uri.
_NEEDS_QUOTING = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")


@attrs.define
class Outgoing:
    """What one request sends, on every attempt (the retry count header is updated in place).

    Attributes:
        method, url: e.g. ``"POST"``, ``"http://127.0.0.1:8000/api/v1/asample"``.
        label: ``"METHOD /path"``, for messages and telemetry.
        headers: every header, final (see ``tinkex._transport.headers``).
        body: the body bytes, if any.
        params: query parameters.
        timeouts: (connect, read) seconds.
    """

    method: str
    url: str
    label: str
    headers: dict[str, str]
    body: bytes | None
    params: Mapping[str, Any] | None
    timeouts: tuple[float, float]


class Sender:
    """Sends prepared requests to ``base_url`` over one ``requests.Session``.

    Args:
        settings: resolved client settings (pool size).
        base_url: the API's URL; redirects are followed within its origin only.
        session: a ``requests.Session`` to use instead of a new one (tests).
    """

    def __init__(
        self, settings: ClientSettings, base_url: str, session: requests.Session | None = None
    ) -> None:
        import requests
        import requests.adapters

        self.base_url = base_url
        #: ``settings.default_query``: sent again to where a followed redirect points.
        self.default_query = dict(settings.default_query)
        self.session = session if session is not None else requests.Session()
        adapter = _adapter_factory()(settings.proxy_headers, settings.max_connections)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if settings.proxy is not None:  # TINKEX_PROXY / proxy=: every request, whatever NO_PROXY
            self.session.proxies.update({"http": settings.proxy, "https": settings.proxy})
        # Environment lookups (proxies, CA bundle, netrc) cost tens of microseconds per request
        # when requests does them itself (trust_env); do them once here instead.
        if self.session.trust_env:
            if settings.proxy is None:
                self.session.proxies.update(requests.utils.get_environ_proxies(base_url))
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
            if bundle:
                self.session.verify = bundle
            self.session.trust_env = False
        self._prepared_cls = requests.PreparedRequest
        self._headers_cls = requests.structures.CaseInsensitiveDict
        self._requote = requests.utils.requote_uri
        self.send_kwargs: dict[str, Any] = {
            # The body is read by send() in one read (requests' own read takes 10 KiB at a
            # time: 50 trips through urllib3 for a 500 KB forward/backward result).
            "stream": True,
            "verify": self.session.verify,
            "cert": self.session.cert,
            "proxies": dict(self.session.proxies),
            # Redirects are decided by send() (same origin only), never by requests,
            # which would carry X-API-Key to any origin a 3xx names.
            "allow_redirects": False,
        }
        #: What ``requests`` raises for a timeout, and for any other failure to get an answer.
        self.timeout_exc: type[BaseException] = requests.Timeout
        self.request_exc: type[BaseException] = requests.RequestException

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def send(self, out: Outgoing) -> tuple[requests.Response, bytes]:
        """Send ``out``, following redirects within the API's origin only (docs/protocol.md,
        "Redirects"); returns the answer and its whole body (read here, so failures reading it
        are ``request_exc`` too).

        307/308 keep the method and body; 301/302/303 are followed for GET only (a POST turned
        into a GET would be a different request). The next hop goes to the ``Location`` plus the
        ``settings.default_query`` parameters it does not carry. Any other redirect, one to
        another origin (the credentials would go with it) and more than ``MAX_REDIRECTS`` hops
        raise an ``APIStatusError`` of the 3xx status naming the request and the ``Location``.
        """
        method, label, url, params = out.method, out.label, out.url, out.params
        for _ in range(MAX_REDIRECTS + 1):
            raw = self.session.send(
                self.prepare(method, url, out.headers, out.body, params),
                timeout=out.timeouts,
                **self.send_kwargs,
            )
            # Read whole (back to the pool after it); requests maps failures to its exceptions.
            # No chunk size: one read of the whole body, which urllib3 hands over as it is. With
            # a size it copies every chunk through its buffer (1 MB answer: ~0.7 ms more CPU).
            content = b"".join(raw.iter_content(None))
            status = raw.status_code
            if status not in _REDIRECT_STATUSES:
                return raw, content
            raw.close()
            url = self._redirect_target(method, url, label, status, raw.headers.get("location"))
            params = self._default_query_for(url)
        raise _redirect_error(
            status, label, url, f"more than {MAX_REDIRECTS} redirects; check the server."
        )

    def _redirect_target(
        self, method: str, url: str, label: str, status: int, location: str | None
    ) -> str:
        """Where a ``status`` answer to ``url`` sends us; raises when it must not be followed."""
        if not location:
            raise _redirect_error(status, label, None, "cannot follow it.")
        target = urljoin(url, location)
        if _origin(target) != _origin(self.base_url):
            scheme, host, port = _origin(target)
            raise _redirect_error(
                status,
                label,
                target,
                "tinkex does not follow redirects to another origin, so the API key is not "
                f"sent there. If {scheme}://{host}:{port} is the Tinker API, set base_url "
                "(or TINKER_BASE_URL) to it.",
            )
        if status in (301, 302, 303) and method != "GET":
            raise _redirect_error(
                status,
                label,
                target,
                f"a {status} would turn this {method} into a GET, so it is not followed; "
                "check base_url (or TINKER_BASE_URL) and the server's routing.",
            )
        return target

    def _default_query_for(self, url: str) -> dict[str, Any] | None:
        """The default query parameters that ``url`` (a redirect's target) does not carry."""
        present = {name for name, _ in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
        missing = {k: v for k, v in self.default_query.items() if k not in present}
        return missing or None

    def prepare(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        params: Mapping[str, Any] | None,
    ) -> requests.PreparedRequest:
        """The prepared request, filled in directly.

        ``Session.request()`` re-merges session settings on every call, and in recent requests
        versions that merge goes through runtime-checkable Protocol isinstance checks costing
        ~100 us per request. Our inputs are already normalised (URL built from a validated base
        URL, headers from our own code and validated settings, body already bytes).
        """
        prepared = self._prepared_cls()
        prepared.method = method
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params, doseq=True)}"
        if _NEEDS_QUOTING.search(url):
            url = self._requote(url)
        prepared.url = url
        prepared.headers = self._headers_cls(headers)
        if body is not None:
            prepared.headers["Content-Length"] = str(len(body))
        elif method not in ("GET", "HEAD"):
            prepared.headers["Content-Length"] = "0"
        prepared.body = body
        if self.session.cookies:
            prepared.prepare_cookies(self.session.cookies)
        else:
            # requests reads the jar when an answer is a redirect (to offer ``Response.next``),
            # even with allow_redirects=False: a prepared request without one crashes there.
            prepared._cookies = self.session.cookies  # type: ignore[attr-defined]
        return prepared


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def _without_query(url: str) -> str:
    # Signed URLs carry their secrets in the query: never put it into a message.
    parts = urlsplit(url)
    return parts._replace(query="", fragment="").geturl()


def _redirect_error(status: int, label: str, location: str | None, why: str) -> APIStatusError:
    where = f" to {_without_query(location)}" if location else " with no Location header"
    return APIStatusError(
        f"{label} was redirected ({status}){where}: {why}",
        status_code=status,
        request=label,
    )
