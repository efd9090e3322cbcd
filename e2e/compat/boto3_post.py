#!/usr/bin/env python3
"""boto3 generate_presigned_post: browser-style form uploads (POST Object).

Signs forms with boto3 (SigV4 and the legacy SigV2 presigner) and submits them the way a
browser does, as multipart/form-data built here and sent with urllib (no extra packages).
Reads S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION from the
environment. Exits non-zero with a message naming the failing step.
"""

import os
import sys
import time
import urllib.error
import urllib.request
import uuid

try:
    import boto3
    from botocore.config import Config
except ImportError as err:
    sys.exit(f"FAIL: boto3 not installed ({err}); run e2e/compat/install.sh")


def die(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def step(msg):
    print(f"== {msg}", flush=True)


def expect_eq(what, got, want):
    if got != want:
        die(f"{what}: expected {want!r}, got {got!r}")


def client(endpoint, **config):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, **config),
    )


def encode_form(fields, filename, data):
    """multipart/form-data with the fields in order and the file last, as S3 requires."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
    )
    parts.append(data)
    parts.append(f"\r\n--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(parts)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def submit(post, filename, data, overrides=None):
    """POSTs the form; returns (status, headers, body) whatever the status."""
    fields = dict(post["fields"])
    fields.update(overrides or {})
    content_type, body = encode_form(fields, filename, data)
    req = urllib.request.Request(post["url"], data=body, method="POST",
                                 headers={"Content-Type": content_type})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=60) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode(errors="replace")


def main():
    endpoint = os.environ["S3_ENDPOINT"]
    s3 = client(endpoint, signature_version="s3v4")
    bucket = f"compat-post-{int(time.time())}-{os.getpid()}"
    step(f"create_bucket {bucket}")
    s3.create_bucket(Bucket=bucket)

    step("SigV4 presigned POST with conditions, success_action_status 201")
    post = s3.generate_presigned_post(
        bucket,
        "uploads/${filename}",
        Fields={"success_action_status": "201", "Content-Type": "text/plain",
                "x-amz-meta-origin": "browser"},
        Conditions=[
            {"success_action_status": "201"},
            ["starts-with", "$Content-Type", "text/"],
            {"x-amz-meta-origin": "browser"},
            ["content-length-range", 1, 1024 * 1024],
        ],
        ExpiresIn=300,
    )
    data = os.urandom(200_000)
    status, headers, body = submit(post, "notes.txt", data)
    expect_eq(f"status of the upload ({body})", status, 201)
    if "<Key>uploads/notes.txt</Key>" not in body:
        die(f"the PostResponse names the key: {body}")
    got = s3.get_object(Bucket=bucket, Key="uploads/notes.txt")
    expect_eq("uploaded bytes", got["Body"].read(), data)
    expect_eq("Content-Type", got["ContentType"], "text/plain")
    expect_eq("metadata", got["Metadata"], {"origin": "browser"})

    step("a file larger than content-length-range is refused")
    status, _, body = submit(post, "big.txt", os.urandom(1024 * 1024 + 1))
    expect_eq(f"status ({body})", status, 400)
    if "<Code>EntityTooLarge</Code>" not in body:
        die(f"expected EntityTooLarge: {body}")

    step("a tampered field breaks a condition")
    status, _, body = submit(post, "x.txt", b"x", {"Content-Type": "application/pdf"})
    expect_eq(f"status ({body})", status, 403)
    if "<Code>AccessDenied</Code>" not in body:
        die(f"expected AccessDenied: {body}")

    step("success_action_redirect: 303 to the app with bucket, key and etag")
    post = s3.generate_presigned_post(
        bucket, "redirected.bin",
        Fields={"success_action_redirect": "http://app.example/done"},
        Conditions=[{"success_action_redirect": "http://app.example/done"}],
    )
    status, headers, body = submit(post, "r.bin", b"redirect me")
    expect_eq(f"status ({body})", status, 303)
    location = headers.get("Location", "")
    if not location.startswith("http://app.example/done?bucket=") or "key=redirected.bin" not in location:
        die(f"unexpected redirect target {location!r}")

    step("SigV2 presigned POST (signature_version s3)")
    v2 = client(endpoint, signature_version="s3")
    post = v2.generate_presigned_post(bucket, "legacy.bin")
    if "signature" not in post["fields"]:
        die(f"boto3 made no SigV2 form: {post['fields']}")
    status, _, body = submit(post, "legacy.bin", b"old school")
    expect_eq(f"status ({body})", status, 204)
    expect_eq("SigV2 upload", s3.get_object(Bucket=bucket, Key="legacy.bin")["Body"].read(), b"old school")

    step("clean up")
    for key in ["uploads/notes.txt", "redirected.bin", "legacy.bin"]:
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    print("boto3 presigned POST: OK")


if __name__ == "__main__":
    main()
