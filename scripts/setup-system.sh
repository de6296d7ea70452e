#!/usr/bin/env bash
# Install the system programs the live stack runs, when they are missing:
#   redis-server            (Debian package redis-server) for the Redis sink
#   prometheus, promtool    (Debian package prometheus) for metrics and rule checks
# and, when Debian's python3.11 is there, what makes a venv and builds extensions
# with it (python3.11-venv, python3.11-dev): scripts/dev makes .venv from it,
# since it is built with PGO and LTO (README, Benchmarks).
# livemetrics starts its own copies on free 127.0.0.1 ports (src/livemetrics/stack/),
# so the packages' system services are not wanted and are not started here.
#
# Idempotent and quiet when everything is present; prints what it installs.
# Never fails its caller: without root or apt-get it warns and exits 0, and the
# tests that need a missing program skip with a reason.
set -uo pipefail

# program -> Debian package that provides it
declare -A PACKAGE_OF=(
  [redis-server]=redis-server
  [prometheus]=prometheus
  [promtool]=prometheus
)

# file -> Debian package that provides it, for a Debian python3.11 already there
declare -A PACKAGE_OF_FILE=(
  [/usr/lib/python3.11/ensurepip/__init__.py]=python3.11-venv
  [/usr/include/python3.11/Python.h]=python3.11-dev
)

missing=()
for program in redis-server prometheus promtool; do
  command -v "$program" >/dev/null 2>&1 && continue
  package=${PACKAGE_OF[$program]}
  [[ " ${missing[*]-} " == *" $package "* ]] || missing+=("$package")
done
# Only completes a Debian python3.11 that is there (a release without one, whose
# lists have no candidate, would otherwise refresh them at every run), and apart
# from the servers: a failure here must not keep them from being installed.
python_missing=()
if [ -x /usr/bin/python3.11 ] && command -v dpkg >/dev/null 2>&1; then
  for file in "${!PACKAGE_OF_FILE[@]}"; do
    [ -e "$file" ] || python_missing+=("${PACKAGE_OF_FILE[$file]}")
  done
fi
[ ${#missing[@]} -eq 0 ] && [ ${#python_missing[@]} -eq 0 ] && exit 0

warn() { echo "setup-system: $*" >&2; }
wanted=("${missing[@]}" "${python_missing[@]}")

if [ "$(id -u)" -ne 0 ]; then
  warn "missing ${wanted[*]}; not root, so not installing (run: sudo apt-get install ${wanted[*]})"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  warn "missing ${wanted[*]} and no apt-get here; install them with your package manager"
  exit 0
fi

# Keep postinst scripts from starting the system services (port 6379 / 9090 on
# every interface); a Docker-style policy-rc.d may already do this.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

# Refresh the package lists only when one of the packages has no candidate.
for package in "${wanted[@]}"; do
  candidate=$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    warn "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1 || warn "apt-get update failed"
    break
  fi
done

# install PACKAGE... -- WHAT-IF-NOT: one apt-get call, its output shown only when it fails
install() {
  local if_not=$1 log
  shift
  [ $# -eq 0 ] && return
  warn "installing $*"
  log=$(mktemp)
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "$@" >"$log" 2>&1; then
    cat "$log" >&2
    warn "apt-get install $* failed; $if_not"
  fi
  rm -f "$log"
}

install "the tests that need them will skip" "${missing[@]}"
install "scripts/dev makes .venv from python3.11 on PATH" "${python_missing[@]}"
exit 0
