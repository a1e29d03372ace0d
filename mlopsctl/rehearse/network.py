"""The cluster network of a rehearsal: Service DNS names routed to local processes.

The pods' HTTP clients are given ``HTTP_PROXY`` pointing here, so they call exactly the URLs the
manifests give them (``http://<service>:5000``, ``http://<service>.<ns>.svc.cluster.local:5000``)
and send the Host header in-cluster clients send; the request is forwarded unchanged, Host
included, to the local port of the process standing for that Service. Names that are no Service
answer 502, as an unknown name fails to resolve in a cluster.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from mlopsctl.rehearse._proc import LOOPBACK
from mlopsctl.rehearse.manifests import CLUSTER_DOMAIN

_HOP_BY_HOP = {
    "connection",
    "expect",  # answered here (100 Continue); the body is forwarded whole
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
}


class ClusterNetwork:
    """Routes ``(service name, port)`` to a local port; a proxy on 127.0.0.1."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, int], int] = {}
        network = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def _forward(self) -> None:
                target = urlsplit(self.path)
                local = network.resolve(target.hostname or "", target.port or 80)
                if local is None:
                    self._fail(502, f"no Service answers to {target.hostname}:{target.port}")
                    return
                body = self._body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                path = target.path or "/"
                if target.query:
                    path += "?" + target.query
                upstream = http.client.HTTPConnection(LOOPBACK, local, timeout=300)
                try:
                    upstream.request(self.command, path, body=body, headers=headers)
                    response = upstream.getresponse()
                    data = response.read()
                except OSError as exc:
                    self._fail(502, f"{target.hostname}: {exc}")
                    return
                finally:
                    upstream.close()
                self.send_response_only(response.status, response.reason)
                # A HEAD answer has no body but the length of the one GET would send.
                length = response.getheader("Content-Length") if self.command == "HEAD" else None
                for key, value in response.getheaders():
                    if key.lower() not in _HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", length or str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks: list[bytes] = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _fail(self, status: int, message: str) -> None:
                data = message.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _forward

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def proxy_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def add(self, service: str, port: int, local_port: int) -> None:
        self.routes[(service, port)] = local_port

    def resolve(self, host: str, port: int) -> int | None:
        """``<svc>``, ``<svc>.<ns>``, ``<svc>.<ns>.svc`` and ``<svc>.<ns>.svc.cluster.local``."""
        parts = host.lower().rstrip(".").split(".")
        if len(parts) > 2 and ".".join(parts[2:]) not in ("svc", CLUSTER_DOMAIN):
            return None
        return self.routes.get((parts[0], port))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
