"""S3 (issue 17): moto 5.1 in server mode, with an empty bucket for each test.

The fixture ``s3`` gives each test a server of its own with a bucket made for it::

    def test_upload(s3):
        app.upload("report.pdf", endpoint=s3.endpoint_url, bucket=s3.bucket)
        assert s3.keys() == ["report.pdf"]
        s3.client().head_object(Bucket=s3.bucket, Key="report.pdf")   # boto3 (pip install boto3)

``s3_container(isolation="bucket")`` shares one server per session (per xdist worker, whose tests
run one at a time) and gives each test a bucket of its own, made before the test; after it,
moto's reset (``POST /moto-api/reset``) empties and deletes that bucket and whatever else the
test made (other buckets, versions, uploads in progress, other AWS services' state), so the next
test sees one empty bucket and nothing else, whatever names the last one used.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.client
import itertools
import re
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

from pytest_pods import wait
from pytest_pods.client.contract import ContainerAPI
from pytest_pods.errors import PodsError
from pytest_pods.plugin.fixtures import container
from pytest_pods.plugin.services import (
    Service,
    catalogue_service,
    environment_of,
    per_database,
)
from pytest_pods.plugin.session import PodsSession

__all__ = ["S3", "s3", "s3_container", "s3_image"]

s3_image = catalogue_service("s3", "pytest-pods/s3:5.1")

#: werkzeug's line once moto's server listens
READY_LINE = r"Running on "
ISOLATION_LEVELS = ("container", "bucket")
#: S3's rule for bucket names (the common subset: no dots next to each other or to a hyphen)
_BUCKET = re.compile(r"(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9](?:[a-z0-9-]|\.(?![.-]))*(?<![-.])")
_NAMES = itertools.count(1)


def check_bucket_name(name: str) -> str:
    """``name`` if S3 takes it as a bucket name.

    :raises ValueError: it does not (and why)
    """
    if not isinstance(name, str) or not 3 <= len(name) <= 63 or not _BUCKET.fullmatch(name):
        raise ValueError(f"pytest-pods: bucket name {name!r}: S3 takes 3 to 63 lowercase letters, digits, "
                         "hyphens and dots, starting and ending with a letter or digit")
    return name


class S3(Service):
    """A running moto server: S3 (and moto's other AWS APIs) on ``port``, any key accepted.

    ``endpoint_url`` from the host, ``network_endpoint_url`` from another container on its
    network; ``access_key``/``secret_key``/``region``; ``bucket``, the bucket made for this test
    (None with ``bucket=False``); ``env``/``network_env`` are the ``AWS_*`` variables an
    application reads (``AWS_ENDPOINT_URL`` too: boto3 1.28+ and the AWS CLI 2.13+ use it).
    ``client(service)`` is a boto3 client (``pip install boto3``); ``put``/``get``/``keys``/
    ``buckets``/``reset`` need no library.
    """

    PORT = 5000
    access_key = "testing"
    secret_key = "testing"

    def __init__(self, container: ContainerAPI, port: int | None = None, *, bucket: str | None = None,
                 region: str = "us-east-1") -> None:
        super().__init__(container, port)
        self.bucket = bucket
        self.region = region

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def network_endpoint_url(self) -> str:
        return f"http://{self.network_host}:{self.network_port}"

    def _env(self, endpoint: str) -> dict[str, str]:
        env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
               "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": self.region,
               "AWS_REGION": self.region}
        if self.bucket:
            env["S3_BUCKET"] = self.bucket
        return env

    @property
    def env(self) -> dict[str, str]:
        """``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
        ``AWS_DEFAULT_REGION``/``AWS_REGION`` (and ``S3_BUCKET``) for a process on the host."""
        return self._env(self.endpoint_url)

    @property
    def network_env(self) -> dict[str, str]:
        """As :attr:`env`, for a container on the server's network."""
        return self._env(self.network_endpoint_url)

    def client(self, service: str = "s3", **kwargs: Any) -> Any:
        """A boto3 client of ``service`` on this server; needs ``pip install boto3``."""
        import boto3  # type: ignore[import-untyped]  # lazy: optional (pip install boto3); only for a client

        for k, v in (("endpoint_url", self.endpoint_url), ("aws_access_key_id", self.access_key),
                     ("aws_secret_access_key", self.secret_key), ("region_name", self.region)):
            kwargs.setdefault(k, v)
        return boto3.client(service, **kwargs)

    def resource(self, service: str = "s3", **kwargs: Any) -> Any:
        """A boto3 resource of ``service`` on this server; needs ``pip install boto3``."""
        import boto3  # lazy: optional (pip install boto3); only for a resource

        for k, v in (("endpoint_url", self.endpoint_url), ("aws_access_key_id", self.access_key),
                     ("aws_secret_access_key", self.secret_key), ("region_name", self.region)):
            kwargs.setdefault(k, v)
        return boto3.resource(service, **kwargs)

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30) -> bytes:
        """One request to the server, signed (AWS Signature Version 4) with ``access_key``: moto
        treats an unsigned one as anonymous, which private objects refuse. ``path`` is the
        URI-encoded path and query. The response's body.

        :raises PodsError: an answer other than 2xx (S3's error code and message), or none
        """
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        # a body without a type is taken for a form by moto's server: say it is bytes
        hdrs = {"Content-Type": "application/octet-stream", **(headers or {})} if body is not None else dict(headers or {})
        hdrs.update(self._signature(method, path, body or b"", f"{self.host}:{self.port}"))
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as exc:
            raise PodsError(f"s3 {method} {path} on {self.name}: {exc}") from None
        finally:
            conn.close()
        if not 200 <= resp.status < 300:
            raise PodsError(f"s3 {method} {path} on {self.name}: {resp.status} {_error_text(data)}")
        return data

    def _signature(self, method: str, path: str, body: bytes, host: str) -> dict[str, str]:
        """The SigV4 headers of one S3 request (docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html)."""
        now = datetime.datetime.now(datetime.UTC)
        stamp, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        uri, _, query = path.partition("?")
        pairs = sorted((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                       for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True))
        payload = hashlib.sha256(body).hexdigest()
        signed = {"host": host, "x-amz-content-sha256": payload, "x-amz-date": stamp}
        canonical = "\n".join([method, uri or "/", "&".join(f"{k}={v}" for k, v in pairs),
                               "".join(f"{k}:{v}\n" for k, v in signed.items()), ";".join(signed), payload])
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        key = f"AWS4{self.secret_key}".encode()
        for part in (day, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return {"x-amz-content-sha256": payload, "x-amz-date": stamp,
                "Authorization": f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, "
                                 f"SignedHeaders={';'.join(signed)}, Signature={sig}"}

    def _object_path(self, key: str, bucket: str | None) -> str:
        name = bucket or self.bucket
        if not name:
            raise ValueError("pytest-pods: s3: no bucket: give bucket= (this fixture made none)")
        if not key:
            raise ValueError("pytest-pods: s3: an object key must not be empty")
        return f"/{name}/{urllib.parse.quote(key, safe='/')}"

    def put(self, key: str, data: bytes | str, bucket: str | None = None) -> None:
        """Store ``data`` under ``key`` (in this test's bucket, or ``bucket``)."""
        self.request("PUT", self._object_path(key, bucket), data.encode() if isinstance(data, str) else data)

    def get(self, key: str, bucket: str | None = None) -> bytes:
        """The object ``key``'s bytes.

        :raises PodsError: ``404 NoSuchKey`` and the like
        """
        return self.request("GET", self._object_path(key, bucket))

    def keys(self, prefix: str = "", bucket: str | None = None) -> list[str]:
        """The keys in the bucket (under ``prefix``), sorted, every page."""
        name = bucket or self.bucket
        if not name:
            raise ValueError("pytest-pods: s3: no bucket: give bucket= (this fixture made none)")
        out: list[str] = []
        token = ""
        while True:
            query = {"list-type": "2", "prefix": prefix, **({"continuation-token": token} if token else {})}
            root = ET.fromstring(self.request("GET", f"/{name}?{urllib.parse.urlencode(query)}"))
            out += [el.text or "" for el in _elements(root, "Key")]
            token = next((el.text or "" for el in _elements(root, "NextContinuationToken")), "")
            truncated = next((el.text for el in _elements(root, "IsTruncated")), "false")
            if truncated != "true" or not token:
                return sorted(out)

    def buckets(self) -> list[str]:
        """The names of the server's buckets."""
        root = ET.fromstring(self.request("GET", "/"))
        return sorted(el.text or "" for el in _elements(root, "Name"))

    def create_bucket(self, name: str) -> None:
        """Make bucket ``name`` in this server's ``region``."""
        body = None
        if self.region != "us-east-1":  # S3 wants the region said for any other
            body = (f'<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                    f"<LocationConstraint>{self.region}</LocationConstraint></CreateBucketConfiguration>").encode()
        self.request("PUT", f"/{check_bucket_name(name)}", body, {"Content-Type": "application/xml"} if body else None)

    def reset(self) -> None:
        """moto's reset: every bucket, object and other AWS resource on the server is gone."""
        self.request("POST", "/moto-api/reset")

    def __repr__(self) -> str:
        return f"<S3 {self.name} {self.endpoint_url} bucket {self.bucket!r}>"


def _elements(root: ET.Element, name: str) -> list[ET.Element]:
    """The elements called ``name`` under ``root``, in any namespace (moto's answers use S3's
    namespace with and without its last slash)."""
    return [el for el in root.iter() if el.tag == name or el.tag.endswith("}" + name)]


def _error_text(data: bytes) -> str:
    """S3's ``<Error><Code>..</Code><Message>..</Message></Error>`` as ``Code: Message``."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return data.decode(errors="replace").strip()[:300]
    code = next((el.text or "" for el in _elements(root, "Code")), "")
    message = next((el.text or "" for el in _elements(root, "Message")), "")
    return f"{code}: {message}" if code else data.decode(errors="replace").strip()[:300]


def _bucket_of(container_name: str) -> str:
    """A bucket name from a container's name (``pods-1a2b3c4d-gw0-3``), as S3 takes it."""
    return re.sub(r"[^a-z0-9-]+", "-", container_name.lower())[-63:].strip("-").rjust(3, "0")


_MADE: set[tuple[str, str]] = set()  # (container id, bucket) made by a fixture: wrap() runs more than once
_MADE_LOCK = threading.Lock()


def _made(server: S3, name: str) -> S3:
    """``server`` with bucket ``name`` made on it (once per container: a pooled container's value
    is made when it is started ahead and again when a test takes it)."""
    with _MADE_LOCK:
        if (server.id, name) not in _MADE:
            server.create_bucket(name)
            _MADE.add((server.id, name))
    server.bucket = name
    return server


def s3_container(*, scope: str = "function", image: Any = "{s3_image}", isolation: str = "container",
                 bucket: str | bool = True, region: str = "us-east-1", command: Sequence[str] | str | None = None,
                 pool: int = 0, **options: Any) -> Any:
    """Declare an S3 fixture (its value is an :class:`S3`).

    :param isolation: ``"container"``: each test (each scope) its own server (``pool`` servers
        started ahead); ``"bucket"``: one server per session (per xdist worker), each test a
        bucket of its own, and moto's reset after the test (everything the test made is gone)
    :param bucket: the bucket made for each test: True (a new name per test: the container's
        name, or ``test-<n>`` on a shared server), a name (the same for every test: each gets it
        empty), or False (none)
    :param region: the region the buckets are made in, and ``region`` of the value
    :param command: ``moto_server`` arguments, as the motoserver/moto image takes them
    """
    if isolation not in ISOLATION_LEVELS:
        raise ValueError(f"pytest-pods: isolation={isolation!r}: use one of {', '.join(ISOLATION_LEVELS)}")
    if "warm" in options:
        raise ValueError("pytest-pods: s3_container(warm=...): moto keeps its buckets in memory only, which a "
                         "snapshot does not hold; put the objects in a fixture")
    if isinstance(bucket, str):
        check_bucket_name(bucket)
    elif not isinstance(bucket, bool):
        raise ValueError(f"pytest-pods: s3_container(bucket={bucket!r}): give True, False or a bucket name")
    if not isinstance(region, str) or not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", region):
        raise ValueError(f"pytest-pods: s3_container(region={region!r}): an AWS region name, like eu-west-1")
    port = int(environment_of(options).get("MOTO_PORT") or S3.PORT)
    options.setdefault("ports", [port])
    options.setdefault("wait", wait.all_of(wait.log(READY_LINE), wait.tcp(port)))

    def name_for() -> str | None:
        return bucket if isinstance(bucket, str) else f"test-{next(_NAMES)}" if bucket else None

    def wrap(c: ContainerAPI) -> S3:
        server = S3(c, port, region=region)
        # a server per test: the bucket named after its container (one name, however often wrapped)
        name = bucket if isinstance(bucket, str) else _bucket_of(c.name) if bucket else None
        return _made(server, name) if name else server

    if isolation == "container":
        return container(image=image, command=command, scope=scope, wrap=wrap, pool=pool, **options)
    if pool:
        raise ValueError("pytest-pods: s3_container(pool=...) needs isolation='container'")
    return per_database("s3", scope, image, options,
                        lambda s, fixture, img, opts: _ResetServer(s, fixture, img, command, opts, port, region,
                                                                   name_for))


class _ResetServer:
    """The shared server of bucket isolation: each test's bucket made before it, moto's reset
    after it (a test of this worker ran to its end before: they run one at a time)."""

    def __init__(self, s: PodsSession, fixture: str, image: str, command: Sequence[str] | str | None,
                 options: dict[str, Any], port: int, region: str, name_for: Any) -> None:
        opts = {k: v for k, v in options.items() if k != "wait"}
        self._s = s
        self._name_for = name_for
        self._port, self._region = port, region
        self.rec = s.start(f"{fixture} (server)", "session", image, command, wait=options["wait"], options=opts)

    def fresh(self) -> S3:
        server = S3(self.rec.container, self._port, region=self._region)
        name = self._name_for()
        return _made(server, name) if name else server

    def done(self, value: S3) -> None:
        value.reset()
        with _MADE_LOCK:
            _MADE.difference_update({k for k in _MADE if k[0] == value.id})

    def close(self) -> None:
        self._s.release(self.rec)


s3 = s3_container()
