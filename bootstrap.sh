#!/usr/bin/env bash
# sip-harness set-up: makes everything the harness needs, then runs one job.
#
#   ./bootstrap.sh run    set up, then run the conformance matrix (bundled number and profiles)
#   ./bootstrap.sh test   set up, then run lint, type checks and the whole test suite
#   ./bootstrap.sh setup  set up only
#
# "Everything" is: Debian packages (docker.io, tshark, sip-tester, debootstrap),
# the virtual environment in .venv, a running Docker engine and the peer images.
# Each step checks first and does nothing when already done, so a warm run is quick.
# Extra arguments after the job name go to the job (sipharness run / pytest).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
job="${1:-setup}"
shift || true

log() { printf '[bootstrap] %s\n' "$*" >&2; }

# gcc, libc6-dev and python3-dev let mypyc compile the decoder and checks (harness/accel.py).
debian_packages=(docker.io docker-compose tshark sip-tester debootstrap iproute2 python3-venv python3-dev gcc libc6-dev ca-certificates openssl chromium sngrep)

install_debian_packages() {
    local missing=()
    for pkg in "${debian_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        log "missing Debian packages: ${missing[*]}; install them (apt-get install ${missing[*]}) and re-run"
        return 0
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python_bin() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null \
            && "$candidate" -c 'import sys; raise SystemExit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    log "no Python 3.11 or newer found"; return 1
}

make_venv() {
    local stamp=.venv/.installed
    local want
    want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
    if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    log "creating the virtual environment in .venv"
    [ -x .venv/bin/python ] || "$(python_bin)" -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
    echo "$want" > "$stamp"
}

compile_modules() {
    # The same sources compiled by mypyc: optional (pure Python gives the same results,
    # slower), so a failure is logged and set-up goes on. Up to date: does nothing.
    .venv/bin/python -m harness.build_accel 2>&1 | sed -u 's/^/[bootstrap] /' >&2 || true
}

start_docker_engine() {
    if docker_ok; then return 0; fi
    if [ -n "${DOCKER_HOST:-}" ]; then
        log "DOCKER_HOST=$DOCKER_HOST does not answer; start that engine and re-run"; return 1
    fi
    if [ "$(id -u)" != 0 ] || ! command -v dockerd >/dev/null; then
        log "no Docker engine answers; install docker.io and start dockerd (as root), then re-run"
        return 1
    fi
    mkdir -p /var/log
    log "starting dockerd (log: /var/log/sipharness-dockerd.log)"
    # Detached, output to a log file: CI must not wait on it.
    setsid nohup dockerd >/var/log/sipharness-dockerd.log 2>&1 < /dev/null &
    for _ in $(seq 1 60); do
        docker_ok && return 0
        sleep 0.5
    done
    log "dockerd did not answer within 30 s; see /var/log/sipharness-dockerd.log"
    return 1
}

docker_ok() {
    .venv/bin/python - <<'PY' 2>/dev/null
import docker
docker.from_env(timeout=3).ping()
PY
}

build_images() {
    # Images are tagged by a hash of their recipe: a warm build does nothing.
    .venv/bin/sipharness images build
}

setup() {
    install_debian_packages
    make_venv
    compile_modules
    start_docker_engine
    build_images
}

case "$job" in
    setup)
        setup
        ;;
    run)
        setup
        exec .venv/bin/sipharness run "$@"
        ;;
    test)
        setup
        log "ruff"
        .venv/bin/ruff check harness tests bench
        log "mypy (strict on harness/)"
        .venv/bin/mypy
        log "pytest"
        set +e
        .venv/bin/pytest "$@"
        status=$?
        set -e
        # pytest exits 5 when it collected no test: that must not pass silently.
        if [ "$status" -eq 5 ]; then log "pytest collected no tests"; exit 1; fi
        exit "$status"
        ;;
    *)
        echo "usage: ./bootstrap.sh {run|test|setup} [args...]" >&2
        exit 2
        ;;
esac
