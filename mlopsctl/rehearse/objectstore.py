"""The S3-compatible artifact store: moto's standalone server (``moto[server]`` from PyPI) on a
local port, with the bucket of the manifests' artifact root created; read back through the S3 API
(ListObjectsV2) to check what the tracking server stored there."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import quote, urlsplit

from mlopsctl.rehearse import _proc
from mlopsctl.rehearse.errors import MissingToolError

# The S3 server's package; installed into its own environment in the rehearsal's cache.
SERVER_REQUIREMENT = "moto[server]>=5.1,<6"
# The Service the store stands for: pods reach it by this name (the tracking server stores
# artifacts there, and clients download the presigned URLs it hands out from there).
SERVICE = "object-store"
SERVICE_PORT = 9000
ACCESS_KEY = "rehearsal"
SECRET_KEY = "rehearsal-secret"  # moto checks no credentials


class ObjectStore:
    def __init__(self, service: _proc.Service) -> None:
        self.service = service
        assert service.port is not None
        self.port = service.port

    @property
    def endpoint(self) -> str:
        """The in-cluster endpoint URL (the Secret's s3-endpoint-url)."""
        return f"http://{SERVICE}:{SERVICE_PORT}"

    def create_bucket(self, bucket: str) -> None:
        answer = _proc.http_call(self.port, f"/{quote(bucket)}", method="PUT", body=b"")
        if answer.status >= 300:
            raise MissingToolError(f"the object store refused bucket {bucket}: {answer.body}")

    def keys(self, url: str) -> list[str]:
        """The object keys under ``s3://bucket/prefix``."""
        parts = urlsplit(url)
        prefix = parts.path.lstrip("/")
        found: list[str] = []
        token = ""
        while True:
            query = f"list-type=2&prefix={quote(prefix)}" + (
                f"&continuation-token={quote(token)}" if token else ""
            )
            answer = _proc.http_call(self.port, f"/{parts.netloc}?{query}")
            if answer.status != 200:
                return found
            root = ET.fromstring(answer.body)
            ns = {"s3": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {}
            key_path = "s3:Contents/s3:Key" if ns else "Contents/Key"
            found.extend(k.text or "" for k in root.findall(key_path, ns))
            next_token = root.find(
                "s3:NextContinuationToken" if ns else "NextContinuationToken", ns
            )
            if next_token is None or not next_token.text:
                return found
            token = next_token.text


def start(venv: Path, workspace: Path, timeout: float = 60) -> ObjectStore:
    server = venv / "bin" / "moto_server"
    if not server.exists():
        raise MissingToolError(
            "the S3-compatible server is missing", hint=f"pip install '{SERVER_REQUIREMENT}'"
        )
    port = _proc.free_port()
    service = _proc.start(
        [str(server), "-H", _proc.LOOPBACK, "-p", str(port)],
        name="object-store",
        env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8"},
        log=workspace / "object-store.log",
        cwd=workspace,
        port=port,
    )
    ok = _proc.wait_for(service, lambda: _proc.http_call(port, "/").status < 500, timeout)
    if not ok:
        service.stop()
        raise MissingToolError(f"the S3 server did not start: {service.log_tail()}")
    return ObjectStore(service)
