#!/usr/bin/env bash
# Run the test suite against an AddressSanitizer + UndefinedBehaviorSanitizer
# build of convext._core; fail on any sanitizer report.
#
#   bash tools/sanitize.sh [extra pytest arguments]
#
# 1. Builds the extension with -DCONVEXT_SANITIZE=ON into build/asan (or
#    $CONVEXT_SANITIZE_BUILD_DIR), with the active `python` (needs cmake,
#    a C++17 compiler with the sanitizer runtimes, pybind11, numpy).
# 2. Copies the checkout (tracked and untracked, non-ignored files) to a temp
#    directory and puts the sanitized _core*.so into that copy of
#    python/convext; the in-tree module is never touched.
# 3. Runs `python -m pytest` there with the sanitizer runtimes preloaded
#    (the interpreter itself is not instrumented), leak detection off
#    (CPython and numpy leak at exit by design), and every report fatal.
#    The slowest tests (demo, ddp, bench) are skipped, and so is the RSS
#    test of test_memory.py (ASan's quarantine holds freed memory on purpose).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(command -v "${PYTHON:-python}")"
build="${CONVEXT_SANITIZE_BUILD_DIR:-$repo/build/asan}"
cxx="${CXX:-$(command -v g++ || command -v c++)}"

# Build tools: pybind11 is only a build-time dependency of `pip install .`
# (an isolated build env), so a test venv may lack it.
missing=()
"$py" -c "import pybind11, numpy" >/dev/null 2>&1 || missing+=(pybind11)
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "sanitize: missing ${missing[*]}; install with: $py -m pip install ${missing[*]} ninja" >&2
  exit 1
fi

echo "== sanitize: building $build with $py"
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
cmake -S "$repo" -B "$build" "${generator[@]}" \
  -DCONVEXT_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$cxx" \
  -DPython_EXECUTABLE="$py" \
  -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)"
cmake --build "$build" --parallel "$(nproc 2>/dev/null || echo 2)"

so="$(find "$build" -name '_core*.so' -type f -printf '%T@ %p\n' | sort -nr | head -n 1 | cut -d' ' -f2-)"
[ -n "$so" ] || { echo "sanitize: no _core*.so under $build" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/convext-sanitize.XXXXXX")"
# CONVEXT_SANITIZE_KEEP=1 keeps the copy and the logs for a closer look
if [ "${CONVEXT_SANITIZE_KEEP:-0}" = 1 ]; then
  echo "== sanitize: keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/repo"
if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$repo" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do if [ -e "$repo/$f" ]; then printf '%s\0' "$f"; fi; done |
    tar -C "$repo" --null -T - -cf - | tar -C "$work/repo" -xf -
else
  tar -C "$repo" --exclude=./build --exclude='*.so' -cf - . | tar -C "$work/repo" -xf -
fi
rm -f "$work/repo/python/convext/"_core*.so
cp "$so" "$work/repo/python/convext/"

asan_rt="$("$cxx" -print-file-name=libasan.so)"
ubsan_rt="$("$cxx" -print-file-name=libubsan.so)"
for rt in "$asan_rt" "$ubsan_rt"; do
  [ -f "$rt" ] || { echo "sanitize: sanitizer runtime $rt not found" >&2; exit 1; }
done
export LD_PRELOAD="$asan_rt $ubsan_rt"
# allocator_may_return_null: an absurd allocation must surface as MemoryError
# (tests/test_hostile.py), not as an ASan "allocation-size-too-big" abort.
# Reports go to stderr (UBSan ignores log_path with a preloaded runtime), so
# pytest captures sys.stdout/err only (--capture=sys): a report that kills the
# process still reaches the log below instead of a discarded capture file.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONPATH="$work/repo/python${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONFAULTHANDLER=1

cd "$work/repo"
loaded="$("$py" -c 'import convext._core as c; print(c.__file__)')"
case "$loaded" in
  "$work"/*) echo "== sanitize: testing $loaded" ;;
  *) echo "sanitize: python imports $loaded, not the sanitized build" >&2; exit 1 ;;
esac

log="$work/pytest.log"
set +e
"$py" -m pytest -p no:cacheprovider --capture=sys \
  -k "not demo and not ddp and not bench" \
  --deselect tests/test_memory.py::test_resident_memory_stays_flat_over_thousands_of_calls \
  "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# Any report fails the run, also one printed by a subprocess a test started.
# (Allocator warnings about an absurd allocation refused are not reports.)
if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$log"; then
  echo "== sanitize: sanitizer report(s) found:" >&2
  grep -nE -A3 "ERROR: (Address|Leak)Sanitizer|runtime error:" "$log" | head -n 60 >&2
  [ "$status" -ne 0 ] || status=1
fi
if [ "$status" -ne 0 ]; then
  [ "$status" -gt 128 ] && echo "sanitize: pytest died from signal $((status - 128))" >&2
  echo "== sanitize: FAILED (status $status)" >&2
else
  echo "== sanitize: passed, no sanitizer reports"
fi
exit "$status"
