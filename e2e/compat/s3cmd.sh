#!/usr/bin/env bash
# s3cmd: mb, put (one multipart), ls, get, compare, del, rb.
set -euo pipefail
source "$(dirname "$0")/common.sh"
require_tool s3cmd

W="$COMPAT_WORKDIR/s3cmd"
mkdir -p "$W"
B=$(bucket_name s3cmd)
host="${S3_ENDPOINT#http://}"
host="${host%/}"
# A generated config keeps the user's ~/.s3cfg out of the test; host_bucket
# without %(bucket)s makes s3cmd use path-style requests.
cat >"$W/s3cfg" <<CFG
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $host
host_bucket = $host
use_https = False
bucket_location = $AWS_REGION
signature_v2 = False
socket_timeout = 60
CFG
sc() { s3cmd -c "$W/s3cfg" --no-progress "$@"; }

step "mb s3://$B"
sc mb "s3://$B"
sc ls | grep -q "s3://$B\$" || die "s3cmd ls does not list the new bucket $B"

step "put a small file and a 12 MiB file in 5 MiB parts"
random_file "$W/small" 4321
random_file "$W/large" $((12 * 1024 * 1024 + 99))
sc put "$W/small" "s3://$B/dir/small"
sc put --multipart-chunk-size-mb=5 "$W/large" "s3://$B/dir/large"

step "ls"
out=$(sc ls "s3://$B/dir/")
echo "$out"
grep -q " 4321 *s3://$B/dir/small\$" <<<"$out" || die "s3cmd ls does not show dir/small with 4321 bytes"
grep -q " 12583011 *s3://$B/dir/large\$" <<<"$out" || die "s3cmd ls does not show dir/large with 12583011 bytes"

step "get and compare"
sc get "s3://$B/dir/small" "$W/small.down"
sc get "s3://$B/dir/large" "$W/large.down"
same_file "$W/small" "$W/small.down"
same_file "$W/large" "$W/large.down"

step "del, rb"
sc del "s3://$B/dir/small" "s3://$B/dir/large"
left=$(sc ls -r "s3://$B" | wc -l)
expect_eq "objects left after del" "$left" 0
sc rb "s3://$B"
if sc ls | grep -q "s3://$B\$"; then die "bucket $B still listed after rb"; fi
echo "s3cmd: all steps passed"
