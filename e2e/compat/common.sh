# Shared helpers for the client-compatibility scripts. Sourced, not run.
#
# The harness (e2e/tests/compat.rs) sets S3_ENDPOINT, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION and COMPAT_WORKDIR. To run a script by
# hand against any S3 server, export those five variables and call it.

: "${S3_ENDPOINT:?S3_ENDPOINT must be set (e.g. http://127.0.0.1:9000)}"
: "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID must be set}"
: "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY must be set}"
: "${COMPAT_WORKDIR:?COMPAT_WORKDIR must be set to an empty scratch folder}"
export AWS_REGION="${AWS_REGION:-us-east-1}"
export AWS_DEFAULT_REGION="$AWS_REGION"

# Any failing command names itself, so no step fails silently under set -e.
trap 'echo "FAIL: \`$BASH_COMMAND\` exited with $? (${BASH_SOURCE[0]##*/} line $LINENO)" >&2' ERR

die() {
    echo "FAIL: $*" >&2
    exit 1
}

step() {
    echo "== $*"
}

# Fails with a pointer to install.sh when a client is not installed.
require_tool() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed; run e2e/compat/install.sh"
}

# A bucket name no earlier run (or parallel script) uses.
bucket_name() {
    echo "compat-$1-$(date +%s)-$$-$RANDOM"
}

random_file() {
    head -c "$2" /dev/urandom >"$1"
}

same_file() {
    cmp -s "$1" "$2" || die "bytes differ: $1 ($(sha256sum <"$1" | cut -c1-16)) vs $2 ($(sha256sum <"$2" | cut -c1-16))"
}

# Compares two folder trees: same relative paths, same bytes.
same_tree() {
    diff -r "$1" "$2" >/dev/null || die "trees differ: $(diff -rq "$1" "$2" | head -5)"
}

expect_eq() {
    [[ "$2" == "$3" ]] || die "$1: expected '$3', got '$2'"
}
