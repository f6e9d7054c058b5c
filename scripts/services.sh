#!/usr/bin/env bash
# Installs (from Debian's packages) and starts, idempotently, what `station run` and the
# end-to-end tests talk to: a Docker engine and two CNCF distribution registries on loopback.
#
#   scripts/services.sh          install if missing, start what is not running, print the env
#   scripts/services.sh env      print the env only (PHT_REGISTRY_A, PHT_REGISTRY_B, DOCKER_HOST)
#   scripts/services.sh stop     stop the registries and the engine this script started
#
# State lives under $PHT_SERVICES_DIR (default /var/lib/pht-services); logs are there too.
set -euo pipefail
# The caller evaluates standard output (`eval "$(scripts/services.sh)"`): it carries the export
# lines and nothing else; whatever apt, dockerd or the registries print goes to standard error.
# The daemons started here get no fd 3: one that held it would keep the caller's `$(…)` open
# for as long as it runs (the first start hung that way).
exec 3>&1 1>&2
state="${PHT_SERVICES_DIR:-/var/lib/pht-services}"
reg_a_port="${PHT_REGISTRY_A_PORT:-5001}"
reg_b_port="${PHT_REGISTRY_B_PORT:-5002}"
sock="${PHT_DOCKER_SOCK:-/var/run/docker.sock}"

print_env() {
  {
    echo "export PHT_REGISTRY_A=127.0.0.1:$reg_a_port"
    echo "export PHT_REGISTRY_B=127.0.0.1:$reg_b_port"
    echo "export DOCKER_HOST=unix://$sock"
  } >&3
}

case "${1:-start}" in
  env) print_env; exit 0 ;;
  stop)
    for p in "$state"/*.pid; do
      [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
      rm -f "$p"
    done
    exit 0 ;;
  start) ;;
  *) echo "usage: $0 [start|env|stop]"; exit 2 ;;
esac

up() {
  docker -H "unix://$sock" version >/dev/null 2>&1 &&
    curl -fsS "http://127.0.0.1:$reg_a_port/v2/" >/dev/null 2>&1 &&
    curl -fsS "http://127.0.0.1:$reg_b_port/v2/" >/dev/null 2>&1 &&
    command -v skopeo >/dev/null && command -v openssl >/dev/null && [ -x /bin/busybox ]
}
if up; then print_env; exit 0; fi

if [ "$(id -u)" != 0 ]; then
  echo "services.sh: must run as root (it installs packages and starts dockerd)"
  exit 1
fi

need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
command -v skopeo >/dev/null || need+=(skopeo)
# The route service's token tests make their signing certificate with the openssl command.
command -v openssl >/dev/null || need+=(openssl)
# The central side's compose file is brought up by the tests with Debian's docker-compose.
command -v docker-compose >/dev/null || need+=(docker-compose)
# scripts/images.sh strips the route service's binary with objcopy.
command -v objcopy >/dev/null || need+=(binutils)
# The station's systemd unit is checked with systemd-analyze verify.
command -v systemd-analyze >/dev/null || need+=(systemd)
[ "${#need[@]}" -eq 0 ] || "$(dirname "$0")/apt-install.sh" "${need[@]}"
mkdir -p "$state"

alive() { [ -e "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() { # what, command...
  local what="$1"; shift
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "services.sh: $what did not come up; see $state/*.log"
  exit 1
}

# The Docker engine. Containers of trains run with network none, so no bridge or iptables is
# needed; vfs is the fallback when overlayfs is not available in this kernel/sandbox.
if ! docker -H "unix://$sock" version >/dev/null 2>&1; then
  driver="${PHT_DOCKER_STORAGE_DRIVER:-}"
  if [ -z "$driver" ]; then
    driver=vfs
    mkdir -p "$state/ovl-probe"/{l,u,w,m}
    if mount -t overlay overlay -o "lowerdir=$state/ovl-probe/l,upperdir=$state/ovl-probe/u,workdir=$state/ovl-probe/w" "$state/ovl-probe/m" 2>/dev/null; then
      umount "$state/ovl-probe/m"; driver=overlay2
    fi
    rm -rf "$state/ovl-probe"
  fi
  echo "services.sh: starting dockerd (storage driver $driver)"
  nohup dockerd --host "unix://$sock" --data-root "$state/docker" --exec-root "$state/docker-exec" \
    --pidfile "$state/dockerd.pid" --storage-driver "$driver" --iptables=false --ip-forward=false \
    --ip-masq=false --bridge=none >"$state/dockerd.log" 2>&1 3>&- &
  wait_for dockerd docker -H "unix://$sock" version
fi

start_registry() { # name port
  local name="$1" port="$2"
  if curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; then return; fi
  mkdir -p "$state/$name"
  cat > "$state/$name.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/$name
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
YML
  echo "services.sh: starting registry $name on 127.0.0.1:$port"
  nohup /usr/bin/docker-registry serve "$state/$name.yml" >"$state/$name.log" 2>&1 3>&- &
  echo $! > "$state/$name.pid"
  wait_for "registry $name" curl -fsS "http://127.0.0.1:$port/v2/"
}
start_registry registry-a "$reg_a_port"
start_registry registry-b "$reg_b_port"
print_env
