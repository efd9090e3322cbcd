#!/usr/bin/env bash
# aws CLI (v1 or v2): high-level `aws s3` commands and a set of `aws s3api` calls.
set -euo pipefail
source "$(dirname "$0")/common.sh"
require_tool aws

W="$COMPAT_WORKDIR/aws"
mkdir -p "$W"
B=$(bucket_name aws)
s3() { aws --endpoint-url "$S3_ENDPOINT" --no-paginate s3 "$@"; }
s3api() { aws --endpoint-url "$S3_ENDPOINT" --output text s3api "$@"; }

step "s3 mb s3://$B"
s3 mb "s3://$B"
s3 ls | grep -q " $B\$" || die "aws s3 ls does not list the new bucket $B"

step "s3 cp of a 100 MiB file up and down (multipart)"
random_file "$W/big" $((100 * 1024 * 1024))
s3 cp --only-show-errors "$W/big" "s3://$B/big/file.bin"
s3 cp --only-show-errors "s3://$B/big/file.bin" "$W/big.down"
same_file "$W/big" "$W/big.down"
etag=$(s3api head-object --bucket "$B" --key big/file.bin --query ETag)
[[ "$etag" == *-13\" ]] || die "100 MiB in 8 MiB parts should have a 13-part ETag, got $etag"

step "s3 sync up, change one file, sync again, sync down"
mkdir -p "$W/tree/a/b"
echo "top" >"$W/tree/top.txt"
: >"$W/tree/empty.txt"
random_file "$W/tree/a/one.bin" 10000
random_file "$W/tree/a/b/two.bin" 300000
s3 sync --only-show-errors "$W/tree" "s3://$B/tree/"
echo "changed" >>"$W/tree/a/one.bin"
out=$(s3 sync --no-progress "$W/tree" "s3://$B/tree/")
echo "$out"
uploads=$(grep -c '^upload:' <<<"$out" || true)
expect_eq "files uploaded by the second sync" "$uploads" 1
grep -q 'a/one.bin' <<<"$out" || die "second sync did not upload the changed file a/one.bin"
s3 sync --only-show-errors "s3://$B/tree/" "$W/tree.down"
same_tree "$W/tree" "$W/tree.down"

step "s3 ls"
out=$(s3 ls "s3://$B/tree/")
echo "$out"
grep -q 'PRE a/$' <<<"$out" || die "s3 ls tree/ should show the common prefix a/"
grep -q ' 4 top.txt$' <<<"$out" || die "s3 ls tree/ should show top.txt with size 4"
grep -q ' 0 empty.txt$' <<<"$out" || die "s3 ls tree/ should show empty.txt with size 0"
count=$(s3 ls --recursive "s3://$B" | wc -l)
expect_eq "objects listed by s3 ls --recursive" "$count" 5

step "s3api put-object with metadata and content type, head-object"
echo "hello metadata" >"$W/meta.txt"
s3api put-object --bucket "$B" --key api/meta.txt --body "$W/meta.txt" \
    --content-type text/x-coffer --metadata color=blue,shape=round >/dev/null
head=$(s3api head-object --bucket "$B" --key api/meta.txt \
    --query '[ContentType, Metadata.color, Metadata.shape, ContentLength]')
expect_eq "head-object ContentType/metadata/length" "$(echo $head)" "text/x-coffer blue round 15"

step "s3api list-objects-v2 with prefix and delimiter"
prefixes=$(s3api list-objects-v2 --bucket "$B" --prefix tree/ --delimiter / --query 'CommonPrefixes[].Prefix')
expect_eq "common prefixes under tree/" "$(echo $prefixes)" "tree/a/"
keys=$(s3api list-objects-v2 --bucket "$B" --prefix tree/ --delimiter / --query 'Contents[].Key')
expect_eq "keys directly under tree/" "$(echo $keys)" "tree/empty.txt tree/top.txt"

step "s3api copy-object keeps bytes and metadata"
s3api copy-object --bucket "$B" --key api/copy.txt --copy-source "$B/api/meta.txt" >/dev/null
s3api get-object --bucket "$B" --key api/copy.txt "$W/copy.txt" >/dev/null
same_file "$W/meta.txt" "$W/copy.txt"
head=$(s3api head-object --bucket "$B" --key api/copy.txt --query '[ContentType, Metadata.color]')
expect_eq "copied object's ContentType/metadata" "$(echo $head)" "text/x-coffer blue"

step "s3api delete-objects"
deleted=$(s3api delete-objects --bucket "$B" \
    --delete '{"Objects":[{"Key":"api/meta.txt"},{"Key":"api/copy.txt"}]}' --query 'length(Deleted)')
expect_eq "objects reported deleted" "$deleted" 2
left=$(s3api list-objects-v2 --bucket "$B" --prefix api/ --query 'length(Contents || `[]`)')
expect_eq "objects left under api/" "$left" 0

step "s3api create-multipart-upload / upload-part / complete-multipart-upload"
random_file "$W/mpu" $((12 * 1024 * 1024 + 12345))
split -b 5M -d "$W/mpu" "$W/mpu.part."
upload_id=$(s3api create-multipart-upload --bucket "$B" --key api/mpu.bin --query UploadId)
parts=""
n=1
for f in "$W"/mpu.part.*; do
    etag=$(s3api upload-part --bucket "$B" --key api/mpu.bin --upload-id "$upload_id" \
        --part-number "$n" --body "$f" --query ETag)
    parts="$parts{\"ETag\":$(printf '%s' "$etag" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))'),\"PartNumber\":$n},"
    n=$((n + 1))
done
echo "{\"Parts\":[${parts%,}]}" >"$W/parts.json"
s3api complete-multipart-upload --bucket "$B" --key api/mpu.bin --upload-id "$upload_id" \
    --multipart-upload "file://$W/parts.json" >/dev/null
s3api get-object --bucket "$B" --key api/mpu.bin "$W/mpu.down" >/dev/null
same_file "$W/mpu" "$W/mpu.down"
etag=$(s3api head-object --bucket "$B" --key api/mpu.bin --query ETag)
[[ "$etag" == *-3\" ]] || die "a 3-part upload should have a -3 ETag, got $etag"

step "s3api get-object --range"
range=$(s3api get-object --bucket "$B" --key api/mpu.bin --range bytes=5242000-5243999 \
    "$W/range.down" --query '[ContentRange, ContentLength]')
expect_eq "ContentRange/ContentLength of a ranged get" "$(echo $range)" "bytes 5242000-5243999/12595257 2000"
head -c 5244000 "$W/mpu" | tail -c 2000 >"$W/range.want"
same_file "$W/range.want" "$W/range.down"

step "s3 rm --recursive, rb"
s3 rm --only-show-errors --recursive "s3://$B"
left=$(s3 ls --recursive "s3://$B" | wc -l)
expect_eq "objects left after rm --recursive" "$left" 0
s3 rb "s3://$B"
if s3 ls | grep -q " $B\$"; then die "bucket $B still listed after rb"; fi
echo "aws: all steps passed"
