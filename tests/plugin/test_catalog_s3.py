"""The S3 service of the catalogue (issue 17): moto 5.1 in server mode, reached with boto3 and
without a library, a server per test or a bucket per test on a shared server (moto's reset
after each), reached by name from another container, pooled, leaving nothing."""

from __future__ import annotations

from typing import Any

import pytest

Inner = Any  # the `inner` fixture (tests/plugin/conftest.py)

TESTS = '''
import boto3
import pytest
from pytest_pods import network
from pytest_pods.errors import PodsError
from pytest_pods.plugin.catalog.s3 import s3_container

net = network(scope="module")
named = s3_container(network=net, bucket="uploads")
shared = s3_container(isolation="bucket")
fixed = s3_container(isolation="bucket", bucket="uploads", region="eu-west-1")
pooled = s3_container(pool=1)
bare = s3_container(bucket=False)

def test_boto3_and_the_plain_helpers_see_one_bucket(s3):
    assert s3.endpoint_url.startswith("http://127.0.0.1:") and s3.region == "us-east-1"
    c = s3.client()
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == [s3.bucket]
    c.put_object(Bucket=s3.bucket, Key="reports/q1.csv", Body=b"a,b\\n")
    s3.put("reports/q2.csv", "c,d\\n")
    assert s3.get("reports/q1.csv") == b"a,b\\n"
    assert c.get_object(Bucket=s3.bucket, Key="reports/q2.csv")["Body"].read() == b"c,d\\n"
    assert s3.keys() == ["reports/q1.csv", "reports/q2.csv"] and s3.keys("reports/q2") == ["reports/q2.csv"]
    url = c.generate_presigned_url("get_object", Params={"Bucket": s3.bucket, "Key": "reports/q1.csv"})
    import urllib.request
    assert urllib.request.urlopen(url).read() == b"a,b\\n"
    assert s3.env["AWS_ENDPOINT_URL"] == s3.endpoint_url and s3.env["S3_BUCKET"] == s3.bucket
    sqs = s3.client("sqs")  # moto's other APIs are there too
    assert sqs.create_queue(QueueName="jobs")["QueueUrl"].endswith("/jobs")

def test_bad_requests_are_named(s3):
    with pytest.raises(PodsError, match="404 NoSuchKey"):
        s3.get("missing")
    with pytest.raises(PodsError, match="NoSuchBucket"):
        s3.keys(bucket="no-such-bucket")
    with pytest.raises(ValueError, match="bucket name 'Bad_Name'"):
        s3.create_bucket("Bad_Name")
    with pytest.raises(ValueError, match="must not be empty"):
        s3.put("", b"x")

@pytest.mark.parametrize("n", [1, 2])
def test_each_test_its_own_bucket_and_nothing_else(shared, n):
    assert shared.buckets() == [shared.bucket]  # the other test's buckets are gone
    assert shared.keys() == []
    shared.put("same-key", str(n))
    shared.create_bucket(f"extra-{n}")  # made by the test, gone after it too
    assert shared.get("same-key") == str(n).encode()

@pytest.mark.parametrize("n", [1, 2])
def test_a_fixed_bucket_name_comes_empty_to_each_test_in_its_region(fixed, n):
    assert fixed.bucket == "uploads" and fixed.keys() == []
    fixed.put("same-key", str(n))
    loc = fixed.client().get_bucket_location(Bucket="uploads")["LocationConstraint"]
    assert loc == "eu-west-1"

def test_reached_by_name_from_another_container(named, pods, net):
    named.put("hello.txt", "hi from the host")
    box = pods.run("busybox", ["sleep", "60"], network=net)
    inside = named.client(endpoint_url=named.network_endpoint_url)  # a URL signed for the container's view
    url = inside.generate_presigned_url("get_object", Params={"Bucket": "uploads", "Key": "hello.txt"})
    res = box.exec(["wget", "-q", "-O", "-", url])
    assert res.output == b"hi from the host", res
    assert named.network_env["AWS_ENDPOINT_URL"] == f"http://{named.name}:5000"

def test_pooled_and_bare(pooled, bare):
    assert pooled.buckets() == [pooled.bucket]
    assert bare.bucket is None and bare.buckets() == []
'''


def test_s3_boto3_isolation_pool_and_network(inner: Inner) -> None:
    if inner.kind != "local":
        pytest.skip("one engine is enough for the server's own behaviour (the image build is the slow part)")
    pytest.importorskip("boto3")
    inner.pytester.makepyfile(test_s3=TESTS)
    result, sid = inner.run("-v", subprocess=True, timeout=600)
    result.assert_outcomes(passed=8)
    assert inner.left(sid) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"isolation": "database"}, "isolation='database': use one of container, bucket"),
    ({"isolation": "bucket", "pool": 2}, r"pool=...\) needs isolation='container'"),
    ({"warm": print}, "moto keeps its buckets in memory only"),
    ({"bucket": "My_Bucket"}, "bucket name 'My_Bucket': S3 takes 3 to 63 lowercase letters"),
    ({"bucket": "ab"}, "bucket name 'ab'"),
    ({"bucket": 3}, r"bucket=3\): give True, False or a bucket name"),
    ({"region": "Europe"}, r"region='Europe'\): an AWS region name"),
])
def test_s3_container_refuses_what_it_cannot_do_by_name(kwargs: dict[str, Any], message: str) -> None:
    from pytest_pods.plugin.catalog.s3 import s3_container

    with pytest.raises(ValueError, match=message):
        s3_container(**kwargs)
