#!/usr/bin/env bash
# rclone: copy a tree (one file above the multipart cutoff), check --checksum, lsf, copy back.
set -euo pipefail
source "$(dirname "$0")/common.sh"
require_tool rclone

W="$COMPAT_WORKDIR/rclone"
mkdir -p "$W"
B=$(bucket_name rclone)
# The remote "coffer" is defined entirely by environment variables; `--config ""`
# keeps the user's own rclone.conf out of the test.
# Plain HTTP: a CA bundle from the environment only makes the S3 SDK fail.
unset AWS_CA_BUNDLE
export RCLONE_CONFIG_COFFER_TYPE=s3
export RCLONE_CONFIG_COFFER_PROVIDER=Other
export RCLONE_CONFIG_COFFER_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID"
export RCLONE_CONFIG_COFFER_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY"
export RCLONE_CONFIG_COFFER_ENDPOINT="$S3_ENDPOINT"
export RCLONE_CONFIG_COFFER_REGION="$AWS_REGION"
rc() {
    rclone --config "" --retries 1 --low-level-retries 2 --contimeout 10s --timeout 60s \
        --s3-upload-cutoff 5M --s3-chunk-size 5M "$@"
}

step "mkdir coffer:$B"
rc mkdir "coffer:$B"

step "copy a tree up"
mkdir -p "$W/tree/docs/deep" "$W/tree/media"
: >"$W/tree/empty"
echo "readme" >"$W/tree/README"
random_file "$W/tree/docs/small.bin" 1024
random_file "$W/tree/docs/deep/medium.bin" $((1024 * 1024 + 3))
random_file "$W/tree/media/large.bin" $((12 * 1024 * 1024 + 7))
rc copy "$W/tree" "coffer:$B/tree"

step "check --checksum"
out=$(rc check --checksum "$W/tree" "coffer:$B/tree" 2>&1) || die "rclone check failed: $out"
echo "$out"
grep -q ' 0 differences found' <<<"$out" || die "rclone check did not report 0 differences"
grep -q ' 5 matching files' <<<"$out" || die "rclone check did not report 5 matching files"

step "lsf -R"
want=$(cd "$W/tree" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
got=$(rc lsf -R --files-only "coffer:$B/tree" | LC_ALL=C sort)
expect_eq "files listed by lsf -R" "$got" "$want"

step "copy back down and compare"
rc copy "coffer:$B/tree" "$W/tree.down"
same_tree "$W/tree" "$W/tree.down"

step "purge"
rc purge "coffer:$B"
echo "rclone: all steps passed"
