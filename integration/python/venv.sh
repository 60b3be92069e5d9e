#!/usr/bin/env bash
# venv.sh — make (once, then reuse) a Python virtualenv with the pinned
# packages of requirements.txt beside this script (pyarrow, numpy,
# scikit-learn), in
#   ${MUON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/muon}/venv
# with the ordinary pip client. Only binary wheels are accepted, so a
# Python version the pins have no wheel for fails fast instead of compiling
# pyarrow for an hour.
#
# Progress goes to stderr; the only stdout line, printed last, is
#   MUON_PYTHON=<venv>/bin/python
# so `export "$(integration/python/venv.sh)"` works.
#
# The venv is reused while its stamp (venv/muon.complete, written last)
# names the same requirements (by hash) and base Python, and its packages
# import; otherwise it is rebuilt from scratch, so a half-finished install
# is never taken for a complete one. Two runs at once wait for each other
# (flock).
#
# With the argument `beam`, the same for beam-requirements.txt (Beam
# Python and scikit-learn, the e2e bench's baseline; its pins conflict
# with the others') in venv-beam, printing MUON_BEAM_PYTHON=...
#
# With the argument `aeon`, the same for aeon-requirements.txt (aeon's
# MiniRocket on numba, the MiniRocket baseline of aeon_minirocket.py; its
# numba needs an older numpy than the others') in venv-aeon, printing
# MUON_AEON_PYTHON=...
#
# Env: MUON_CACHE (cache root), MUON_PYTHON_BASE (the Python that creates
# the venv, default python3; 3.11 or newer), and pip's own PIP_* settings.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements=$here/requirements.txt
muon_cache=${MUON_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/muon}
venv=$muon_cache/venv
var=MUON_PYTHON
probe='import platform, pyarrow, numpy, sklearn
print("Python", platform.python_version(), "pyarrow", pyarrow.__version__,
      "numpy", numpy.__version__, "scikit-learn", sklearn.__version__)'
case ${1:-} in
"") ;;
beam)
	requirements=$here/beam-requirements.txt
	venv=$muon_cache/venv-beam
	var=MUON_BEAM_PYTHON
	probe='import platform, apache_beam, sklearn
print("Python", platform.python_version(), "apache-beam", apache_beam.__version__, "scikit-learn", sklearn.__version__)'
	;;
aeon)
	requirements=$here/aeon-requirements.txt
	venv=$muon_cache/venv-aeon
	var=MUON_AEON_PYTHON
	probe='import platform, aeon, numba, sklearn
print("Python", platform.python_version(), "aeon", aeon.__version__, "numba", numba.__version__, "scikit-learn", sklearn.__version__)'
	;;
*)
	echo "usage: venv.sh [beam|aeon]" >&2
	exit 2
	;;
esac
stamp=$venv/muon.complete
base=${MUON_PYTHON_BASE:-python3}

if ! command -v "$base" >/dev/null; then
	echo "python: no $base found: install Python 3.11 or newer, or set MUON_PYTHON_BASE" >&2
	exit 1
fi
if ! "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
	echo "python: $base is Python $("$base" -c 'import platform; print(platform.python_version())'); the pins need 3.11 or newer (set MUON_PYTHON_BASE)" >&2
	exit 1
fi

# The stamp's key: the requirements, and the base interpreter's version and home.
key="$(sha256sum <"$requirements" | cut -d' ' -f1) $("$base" -c 'import sys; print(sys.version.split()[0], sys.base_prefix)')"

# versions: one line naming the versions, if the venv is complete and its
# packages import (they do not once its base Python is gone).
versions() {
	[[ -f $stamp && $(cat "$stamp") == "$key" ]] || return 1
	"$venv/bin/python" -c "$probe" 2>/dev/null
}

how=cached
if ! v=$(versions); then
	mkdir -p "$muon_cache"
	exec 9>"$venv.lock"
	if command -v flock >/dev/null; then
		flock 9
	fi
	if ! v=$(versions); then
		started=$SECONDS
		echo "python: creating $venv with $base and installing $requirements..." >&2
		rm -rf "$venv"
		"$base" -m venv "$venv" >&2
		if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
			--only-binary=:all: -r "$requirements" >&2; then
			echo "python: pip could not install $requirements (see its errors above)." >&2
			echo "python: check network access to the package index and pip's configuration (pip config list)." >&2
			rm -rf "$venv"
			exit 1
		fi
		echo "$key" >"$stamp.tmp"
		mv "$stamp.tmp" "$stamp"
		if ! v=$(versions); then
			echo "python: $venv was installed but does not import its packages" >&2
			exit 1
		fi
		how="installed in $((SECONDS - started)) s"
	fi
fi
echo "python: $v in $venv ($how)" >&2
echo "$var=$venv/bin/python"
