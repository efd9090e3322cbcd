#!/usr/bin/env bash
# Installs the S3 clients the compatibility tests (e2e/tests/compat.rs) drive:
# aws CLI, boto3 (with awscrt, which botocore needs for CRC32C checksums),
# rclone and s3cmd. Does nothing when they are all present already.
set -euo pipefail

missing_apt=()
command -v rclone >/dev/null 2>&1 || missing_apt+=(rclone)
command -v s3cmd >/dev/null 2>&1 || missing_apt+=(s3cmd)
if ((${#missing_apt[@]})); then
    echo "install.sh: apt-get install ${missing_apt[*]}"
    sudo=""
    [[ $(id -u) == 0 ]] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing_apt[@]}"
fi

missing_pip=()
command -v aws >/dev/null 2>&1 || missing_pip+=(awscli)
python3 -c 'import boto3' >/dev/null 2>&1 || missing_pip+=(boto3)
python3 -c 'import awscrt' >/dev/null 2>&1 || missing_pip+=(awscrt)
if ((${#missing_pip[@]})); then
    echo "install.sh: pip install ${missing_pip[*]}"
    python3 -m pip install --quiet "${missing_pip[@]}"
fi

# Fail here, not in the middle of a test, when something is still missing.
for tool in aws rclone s3cmd; do
    command -v "$tool" >/dev/null 2>&1 || { echo "install.sh: $tool still missing" >&2; exit 1; }
done
python3 -c 'import boto3, awscrt' || { echo "install.sh: boto3/awscrt still missing" >&2; exit 1; }
