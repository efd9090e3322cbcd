#!/usr/bin/env python3
"""boto3: transfer manager, checksums, presigned URLs, pagination, conditional put.

Reads S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION and
COMPAT_WORKDIR from the environment (see common.sh). Exits non-zero with a
message naming the failing step.
"""

import base64
import hashlib
import os
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

try:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config
    from botocore.exceptions import ClientError

    import awscrt  # noqa: F401  (botocore computes CRC32C only through awscrt)
except ImportError as err:
    sys.exit(f"FAIL: boto3/awscrt not installed ({err}); run e2e/compat/install.sh")

MIB = 1024 * 1024


def die(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def step(msg):
    print(f"== {msg}", flush=True)


def expect_eq(what, got, want):
    if got != want:
        die(f"{what}: expected {want!r}, got {got!r}")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def fetch(what, req):
    """urlopen that turns an HTTP error into a FAIL naming the S3 error."""
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        die(f"{what}: HTTP {err.code}: {err.read().decode(errors='replace')}")


def make_client(endpoint, **config):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=10,
            read_timeout=120,
            retries={"max_attempts": 2, "mode": "standard"},
            max_pool_connections=16,
            **config,
        ),
    )


def main():
    endpoint = os.environ["S3_ENDPOINT"]
    work = os.path.join(os.environ["COMPAT_WORKDIR"], "boto3")
    os.makedirs(work, exist_ok=True)
    s3 = make_client(endpoint)
    bucket = f"compat-boto3-{int(time.time())}-{os.getpid()}"

    step(f"create_bucket {bucket}")
    s3.create_bucket(Bucket=bucket)

    step("transfer manager upload_file/download_file of 40 MiB, 8 MiB parts")
    src = os.path.join(work, "big")
    with open(src, "wb") as f:
        f.write(os.urandom(40 * MIB + 777))
    tc = TransferConfig(multipart_threshold=8 * MIB, multipart_chunksize=8 * MIB, max_concurrency=4)
    s3.upload_file(src, bucket, "big.bin", Config=tc)
    down = os.path.join(work, "big.down")
    s3.download_file(bucket, "big.bin", down, Config=tc)
    expect_eq("sha256 of the downloaded file", sha256_file(down), sha256_file(src))
    etag = s3.head_object(Bucket=bucket, Key="big.bin")["ETag"]
    if not etag.endswith('-6"'):
        die(f"40 MiB in 8 MiB parts should have a 6-part ETag, got {etag}")

    step("put/get with ChecksumAlgorithm CRC32C and SHA256")
    body = os.urandom(300_000)
    resp = s3.put_object(Bucket=bucket, Key="sum-crc32c", Body=body, ChecksumAlgorithm="CRC32C")
    crc = resp.get("ChecksumCRC32C")
    if not crc:
        die(f"PutObject with CRC32C returned no ChecksumCRC32C: {resp['ResponseMetadata']['HTTPHeaders']}")
    got = s3.get_object(Bucket=bucket, Key="sum-crc32c", ChecksumMode="ENABLED")
    expect_eq("GetObject body (CRC32C)", got["Body"].read(), body)
    expect_eq("GetObject ChecksumCRC32C", got.get("ChecksumCRC32C"), crc)

    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    resp = s3.put_object(Bucket=bucket, Key="sum-sha256", Body=body, ChecksumAlgorithm="SHA256")
    expect_eq("PutObject ChecksumSHA256", resp.get("ChecksumSHA256"), sha)
    got = s3.get_object(Bucket=bucket, Key="sum-sha256", ChecksumMode="ENABLED")
    expect_eq("GetObject body (SHA256)", got["Body"].read(), body)
    expect_eq("GetObject ChecksumSHA256", got.get("ChecksumSHA256"), sha)

    step("a wrong ChecksumSHA256 is refused")
    try:
        s3.put_object(Bucket=bucket, Key="sum-bad", Body=body,
                      ChecksumSHA256=base64.b64encode(b"\0" * 32).decode())
        die("PutObject with a wrong ChecksumSHA256 succeeded")
    except ClientError as err:
        code = err.response["Error"]["Code"]
        if code not in ("BadDigest", "InvalidRequest", "XAmzContentChecksumMismatch"):
            die(f"wrong ChecksumSHA256 gave {code}, expected BadDigest")

    # boto3 presigns with SigV2 query parameters unless told otherwise; apps
    # that never set signature_version get those, so both are checked.
    presigners = {"default (SigV2)": s3, "s3v4": make_client(endpoint, signature_version="s3v4")}
    for name, presigner in presigners.items():
        step(f"presigned GET fetched with urllib, {name}")
        url = presigner.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "sum-sha256"}, ExpiresIn=300)
        _, got = fetch(f"presigned GET ({name})", url)
        expect_eq(f"presigned GET body ({name})", got, body)

    step("presigned PUT with urllib, s3v4")
    put_body = os.urandom(100_000)
    url = presigners["s3v4"].generate_presigned_url(
        "put_object", Params={"Bucket": bucket, "Key": "presigned-put"}, ExpiresIn=300)
    req = urllib.request.Request(url, data=put_body, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    status, _ = fetch("presigned PUT (s3v4)", req)
    expect_eq("presigned PUT status", status, 200)
    expect_eq("object written by presigned PUT",
              s3.get_object(Bucket=bucket, Key="presigned-put")["Body"].read(), put_body)

    step("paginate list_objects_v2 over 1500 keys with MaxKeys 1000")
    keys = [f"page/{i:05d}" for i in range(1500)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))
    pages = list(s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix="page/", PaginationConfig={"PageSize": 1000}))
    expect_eq("number of pages", len(pages), 2)
    expect_eq("first page KeyCount", pages[0]["KeyCount"], 1000)
    expect_eq("first page IsTruncated", pages[0]["IsTruncated"], True)
    expect_eq("second page IsTruncated", pages[1]["IsTruncated"], False)
    listed = [o["Key"] for p in pages for o in p.get("Contents", [])]
    expect_eq("listed keys (in order)", listed, keys)

    step("conditional put with IfNoneMatch='*'")
    s3.put_object(Bucket=bucket, Key="once", Body=b"first", IfNoneMatch="*")
    try:
        s3.put_object(Bucket=bucket, Key="once", Body=b"second", IfNoneMatch="*")
        die("second PutObject with IfNoneMatch='*' succeeded")
    except ClientError as err:
        expect_eq("error code of the second conditional put", err.response["Error"]["Code"],
                  "PreconditionFailed")
        expect_eq("HTTP status of the second conditional put",
                  err.response["ResponseMetadata"]["HTTPStatusCode"], 412)
    expect_eq("object after a refused conditional put",
              s3.get_object(Bucket=bucket, Key="once")["Body"].read(), b"first")

    step("delete everything and the bucket")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        objs = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if objs:
            resp = s3.delete_objects(Bucket=bucket, Delete={"Objects": objs, "Quiet": True})
            if resp.get("Errors"):
                die(f"delete_objects errors: {resp['Errors'][:3]}")
    s3.delete_bucket(Bucket=bucket)
    print("boto3: all steps passed")


if __name__ == "__main__":
    main()
