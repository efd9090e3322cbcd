#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/ (committed; rerun after changing a format).

Signed seeds use the fuzz targets' fixed key (AKIDFUZZ / fuzz-secret-key), region us-east-1
and time 2025-01-01T00:00:00Z, so they verify and the fuzzer starts past the signature check.
"""

import hashlib
import hmac
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "fuzz-secret-key"
DATE, STAMP = "20250101", "20250101T000000Z"
SCOPE = f"{DATE}/us-east-1/s3/aws4_request"


def write(target, name, data):
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def signing_key():
    k = ("AWS4" + SECRET).encode()
    for part in [DATE, "us-east-1", "s3", "aws4_request"]:
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def sign(text):
    return hmac.new(signing_key(), text.encode(), hashlib.sha256).hexdigest()


def sts(creq):
    return f"AWS4-HMAC-SHA256\n{STAMP}\n{SCOPE}\n" + hashlib.sha256(creq.encode()).hexdigest()


# Bucket policies.
b = "fuzz-bucket"
policies = {
    "public_read": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
                    "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{b}/*"}]},
    "deny_insecure": {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": ["*"]},
                      "Action": "s3:*", "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"],
                      "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
    "conditions": {"Version": "2012-10-17", "Id": "x", "Statement": [
        {"Sid": "ip", "Effect": "Allow", "Principal": "*", "NotAction": ["s3:Delete*"],
         "NotResource": f"arn:aws:s3:::{b}/private/*",
         "Condition": {"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]},
                       "StringLike": {"s3:prefix": ["home/${aws:username}/*"]},
                       "NumericLessThanEquals": {"s3:max-keys": "100"},
                       "DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"},
                       "StringNotEqualsIgnoreCase": {"aws:username": "ROOT"}}}]},
}
for name, doc in policies.items():
    write("bucket_policy", name, json.dumps(doc))
write("bucket_policy", "malformed", '{"Version":"2012-10-17","Statement":[{"Effect":"Maybe"}]}')

# SigV4 requests: header-signed GET, presigned GET, header-signed aws-chunked PUT.
def header_signed(method, path, query, extra, payload):
    headers = {"host": "127.0.0.1:9000", "x-amz-content-sha256": payload, "x-amz-date": STAMP}
    headers.update(extra)
    names = sorted(headers)
    canon_headers = "".join(f"{n}:{headers[n]}\n" for n in names)
    signed = ";".join(names)
    creq = f"{method}\n{path}\n{query}\n{canon_headers}\n{signed}\n{payload}"
    sig = sign(sts(creq))
    auth = f"AWS4-HMAC-SHA256 Credential=AKIDFUZZ/{SCOPE}, SignedHeaders={signed}, Signature={sig}"
    lines = [method, path, query] + [f"{n}: {v}" for n, v in headers.items()] + [f"authorization: {auth}"]
    return "\n".join(lines) + "\n"


write("sigv4_canonical_request", "get_header", header_signed(
    "GET", "/fuzz-bucket/a%20b/c.txt", "list-type=2&prefix=a", {}, "UNSIGNED-PAYLOAD"))
write("sigv4_canonical_request", "put_chunked", header_signed(
    "PUT", "/fuzz-bucket/obj", "", {"content-encoding": "aws-chunked",
                                      "x-amz-decoded-content-length": "5"},
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"))
q = (f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDFUZZ%2F{DATE}%2Fus-east-1%2Fs3%2Faws4_request"
     f"&X-Amz-Date={STAMP}&X-Amz-Expires=600&X-Amz-SignedHeaders=host")
creq = f"GET\n/fuzz-bucket/key\n{q}\nhost:127.0.0.1:9000\n\nhost\nUNSIGNED-PAYLOAD"
write("sigv4_canonical_request", "presigned",
      f"GET\n/fuzz-bucket/key\n{q}&X-Amz-Signature={sign(sts(creq))}\nhost: 127.0.0.1:9000\n")
write("sigv4_canonical_request", "sigv2_header",
      "GET\n/fuzz-bucket/key\nacl\nhost: 127.0.0.1\ndate: Wed, 01 Jan 2025 00:00:00 GMT\n"
      "authorization: AWS AKIDFUZZ:frJIUN8DYpKDtOLCwo//yllqDzg=\n")

# aws-chunked bodies: byte 0 = mode flags, byte 1 = frame size, then the body.
EMPTY = hashlib.sha256(b"").hexdigest()


def signed_chunks(chunks, trailer=None):
    prev, out = "07" * 32, b""
    for data in chunks + [b""]:
        s = sign(f"AWS4-HMAC-SHA256-PAYLOAD\n{STAMP}\n{SCOPE}\n{prev}\n{EMPTY}\n"
                 + hashlib.sha256(data).hexdigest())
        out += f"{len(data):x};chunk-signature={s}\r\n".encode() + data + b"\r\n"
        prev = s
    if trailer:
        name, value = trailer
        t = f"{name}:{value}\n"
        ts = sign(f"AWS4-HMAC-TRAILER\n{STAMP}\n{SCOPE}\n{prev}\n" + hashlib.sha256(t.encode()).hexdigest())
        out = out[:-2] + f"{name}:{value}\r\nx-amz-trailer-signature:{ts}\r\n\r\n".encode()
    return out


write("aws_chunked", "signed", bytes([0, 7]) + signed_chunks([b"hello ", b"world"]))
write("aws_chunked", "signed_trailer", bytes([1, 64]) + signed_chunks([b"abc"], ("x-amz-checksum-crc32", "NSRBwg==")))
write("aws_chunked", "unsigned_trailer",
      bytes([2, 3]) + b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:NSRBwg==\r\n\r\n")
write("aws_chunked", "declared_length", bytes([0x80 | 0x0b, 255]) + signed_chunks([b"hello world"]))

# POST policies: the JSON document, then NUL-separated form fields.
doc = {"expiration": "2030-01-01T00:00:00.000Z", "conditions": [
    {"bucket": "fuzz-bucket"}, ["starts-with", "$key", "user/"], {"success_action_status": "201"},
    ["starts-with", "$Content-Type", "image/"], ["content-length-range", 1, 1048576],
    {"x-amz-algorithm": "AWS4-HMAC-SHA256"}, ["eq", "$x-amz-meta-tag", "t"]]}
write("post_policy", "browser_form", json.dumps(doc).encode() + b"\0key=user/a.jpg\0Content-Type=image/png"
      b"\0success_action_status=201\0x-amz-meta-tag=t\0x-ignore-x=1")
write("post_policy", "extra_field", json.dumps(doc).encode() + b"\0key=user/a\0x-amz-meta-other=1")
