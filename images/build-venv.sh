#!/bin/sh
# Builder-stage step shared by recplat's Dockerfiles: creates /opt/venv from the
# wheelhouse in /wheels (see scripts/containers/wheelhouse.sh) and slims it.
#
#   build-venv.sh [--drop "pkg ..."] [--warm "pkg ..."] [--import "module ..."]
#                 [--prune "pkg ..."] [--check "cmd"]
#
# --drop    top-level packages and console scripts of the recplat wheel that
#           this image does not run (the wheel carries the whole repository)
# --warm    packages whose every module is imported once, so their bytecode is
#           written; with --import, the lazily imported third-party modules
# --prune   third-party packages cut down to the subpackages the warm imports
#           loaded, and their vendored libraries (<pkg>.libs) to those a remaining
#           extension module still names: the service's LightGBM imports only
#           scipy.sparse, not scipy's optimisers, statistics or OpenBLAS (~80 MB)
# --check   a command that must succeed in the finished venv (after pruning)
#
# pip runs from its own wheel, so neither the venv nor the image ever contains
# pip; --no-index keeps the build offline and limited to the locked versions.
# Bytecode is written only for what the image imports (the rest compiles in
# memory when first imported, which a read-only root filesystem allows), and
# test suites, C headers, Cython sources and pyarrow's Flight RPC libraries
# (nothing links them; no image uses them) are removed: 195 MB less in the
# service image (735 -> 540 MB on the local base).
set -eu
drop="" warm="" imports="" prune="" check="true"
while [ $# -gt 0 ]; do
  case "$1" in
    --drop) drop="$2"; shift 2 ;;
    --warm) warm="$2"; shift 2 ;;
    --import) imports="$2"; shift 2 ;;
    --prune) prune="$2"; shift 2 ;;
    --check) check="$2"; shift 2 ;;
    *) echo "build-venv.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

python3 -m venv --without-pip /opt/venv
pip_wheel="$(ls /wheels/pip-*.whl)"
pip() {
  /opt/venv/bin/python "$pip_wheel/pip" install --no-index --no-compile --no-cache-dir \
    --disable-pip-version-check --quiet "$@"
}
pip --find-links /wheels -r /wheels/requirements.txt
if ls /wheels/recplat-*.whl >/dev/null 2>&1; then
  pip --no-deps /wheels/recplat-*.whl
fi

site="$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for package in $drop; do
  rm -rf "${site:?}/$package" "/opt/venv/bin/$package"
done
find "$site" -mindepth 2 -depth -type d -name tests -exec rm -rf {} +
rm -rf "$site"/pyarrow/include "$site"/pyarrow/src "$site"/numpy/_core/include "$site"/pyarrow/*flight*
find "$site" \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' -o -name '*.h' \) -delete

/opt/venv/bin/python - "$warm" "$imports" "$prune" <<'PY'
import collections
import hashlib
import importlib
import os
import pkgutil
import shutil
import sys

# Wheels vendor identical libraries (numpy's and scipy's libgfortran, pyarrow's
# versioned .so copies): hard links store each once in the layer.
copies = collections.defaultdict(list)
for root, _, files in os.walk("/opt/venv"):
    for file in files:
        path = os.path.join(root, file)
        if not os.path.islink(path) and os.path.getsize(path) > 65536:
            with open(path, "rb") as content:
                copies[hashlib.sha256(content.read()).hexdigest()].append(path)
for first, *others in copies.values():
    for other in others:
        os.unlink(other)
        os.link(first, other)

for name in sys.argv[1].split():
    package = importlib.import_module(name)
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(module.name)
for name in sys.argv[2].split():
    importlib.import_module(name)

for name in sys.argv[3].split():
    root = os.path.dirname(importlib.import_module(name).__file__)
    for folder, subfolders, _ in os.walk(root):
        relative = os.path.relpath(folder, root)
        package = name if relative == "." else f"{name}.{relative.replace(os.sep, '.')}"
        for sub in list(subfolders):
            if f"{package}.{sub}" not in sys.modules and os.path.isfile(
                os.path.join(folder, sub, "__init__.py")
            ):
                shutil.rmtree(os.path.join(folder, sub))
                subfolders.remove(sub)
    extensions = [
        os.path.join(folder, file)
        for folder, _, files in os.walk(root)
        for file in files
        if ".so" in file
    ]
    named = b"".join(open(path, "rb").read() for path in extensions)
    vendored = root + ".libs"
    if os.path.isdir(vendored):
        for library in os.listdir(vendored):
            if library.encode() not in named:
                os.unlink(os.path.join(vendored, library))
PY
PATH="/opt/venv/bin:$PATH" sh -c "$check"
