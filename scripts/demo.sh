#!/usr/bin/env bash
# The whole system on one machine, as its three kinds of users meet it:
#   - the consortium's admin starts the route service (SQLite) and two registries wired to it
#     (notifications; token auth with the service as token issuer) and registers the parties;
#   - three hospitals make their keys (`station keys create`) and run `station watch`, each
#     with its own data; hospital-b approves trains by hand (`station queue`, `station approve`);
#   - the creator fetches the route's keys from the service (`train create --route-service`,
#     checked against the fingerprints the hospitals gave), builds the train on the minimal
#     master image, submits it (`train submit`), follows it (`train status --follow`) and
#     decrypts the results (`train results ID`).
# Everything it starts is stopped at the end, whatever happens; files and logs stay in .demo/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
t0=$(date +%s)
scripts/build-deps.sh
eval "$(scripts/services.sh)"   # Docker engine, busybox-static, the master images' registry
# Exactly the test command's first build (scripts/test.sh): the README's second command then
# compiles only the test harnesses. The dev profile with optimised dependencies (Cargo.toml).
echo "=== building (cargo build --workspace --bins: dependencies optimised, as the tests use) ==="
cargo build --workspace --bins --quiet
bin="$root/target/debug"
work="$root/.demo"
rm -rf "$work" && mkdir -p "$work/keys" "$work/algo" "$work/tmp"
cd "$work"
t_built=$(date +%s)

pids=()
follow=
cleanup() {
  local code=$?
  # The creator's follower, then the watchers (SIGTERM: they end runs cleanly), then the
  # service, then the registries. Each gets 30 s to stop (a run in hand is cancelled and
  # reported within seconds), then SIGKILL: a demo that failed never hangs in its cleanup.
  [ -z "$follow" ] || kill -TERM "$follow" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $follow "${pids[@]}"; do
    for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  [ "$code" = 0 ] || { echo "demo failed (exit $code); logs in $work/*.log" >&2; tail -n 20 "$work"/*.log >&2 || true; }
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { # URL: any HTTP answer
  for _ in $(seq 1 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)
    [ "$code" != 000 ] && return 0
    sleep 0.2
  done
  echo "no answer from $1" >&2; return 1
}

master="$PHT_REGISTRY_A/master/busybox:1"
if ! skopeo inspect --tls-verify=false "docker://$master" >/dev/null 2>&1; then
  echo "=== master image $master (offline: FROM scratch + Debian's busybox-static) ==="
  "$root/master-images/busybox-test/build.sh" "$master" >/dev/null
fi

echo "=== admin: route service and two registries (notifications, token auth) ==="
svc_port=$(free_port); url="http://127.0.0.1:$svc_port"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=pht-route-service \
  -keyout token.key -out token.crt 2>/dev/null
regs=()
for i in 0 1; do
  port=$(free_port); regs+=("127.0.0.1:$port")
  secret=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  printf '%s' "$secret" > "hook-$i.secret" && chmod 600 "hook-$i.secret"
  mkdir -p "registry-$i"
  cat > "registry-$i.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry-$i
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
auth:
  token:
    realm: $url/v1/registry-token
    service: registry-$i
    issuer: pht-route-service
    rootcertbundle: $work/token.crt
notifications:
  endpoints:
    - name: route-service
      url: $url/v1/registry-events/distribution
      headers:
        Authorization: ["$secret"]
      timeout: 2s
      threshold: 3
      backoff: 500ms
      ignore:
        mediatypes: [application/octet-stream]
        actions: [pull]
YML
  /usr/bin/docker-registry serve "registry-$i.yml" > "registry-$i.log" 2>&1 & pids+=($!)
done
cat > route-service.toml <<TOML
listen = "127.0.0.1:$svc_port"
database = "sqlite:$work/route.db"
[mover]
reconcile_secs = 10
[token]
key_file = "$work/token.key"
[[registry]]
name = "a"
address = "${regs[0]}"
notification_secret_file = "$work/hook-0.secret"
token_service = "registry-0"
[[registry]]
name = "b"
address = "${regs[1]}"
notification_secret_file = "$work/hook-1.secret"
token_service = "registry-1"
TOML
for r in "${regs[@]}"; do wait_http "http://$r/v2/"; done
db=(--database "sqlite:$work/route.db")

echo "=== hospitals: keys (station keys create) ==="
declare -A home=([hospital-a]=0 [hospital-b]=1 [hospital-c]=0)
for s in hospital-a hospital-b hospital-c; do
  "$bin/station" keys create --station "$s" --key "keys/$s.key.pem" --bits 2048 > "keys/$s.show"
  grep '^fingerprint:' "keys/$s.show" | sed "s/^/  $s /"
done
"$bin/train" keygen creator --out-dir keys --bits 2048 >/dev/null

echo "=== admin: register them (each API key shown once, kept in a 0600 file) ==="
umask 077
"$bin/route-service" admin add root "${db[@]}" > root.api-key
"$bin/route-service" creator add creator --registry "${regs[0]}" --public-key keys/creator.pub.pem "${db[@]}" > creator.api-key
for s in hospital-a hospital-b hospital-c; do
  "$bin/route-service" station add "$s" --registry "${regs[${home[$s]}]}" \
    --public-key "keys/$s.pub.pem" "${db[@]}" > "$s.api-key"
done
umask 022
RUST_LOG=info "$bin/route-service" serve --config route-service.toml 2> route-service.log & pids+=($!)
wait_http "$url/healthz"

echo "=== hospitals: station watch (hospital-b approves by hand) ==="
for s in hospital-a hospital-b hospital-c; do
  mkdir -p "data-$s" && seq 1 $((RANDOM % 50 + 10)) > "data-$s/rows.csv"
  approval=auto; [ "$s" = hospital-b ] && approval=manual
  cat > "$s.toml" <<TOML
[station]
id = "$s"
key = "$work/keys/$s.key.pem"

[policy]
allowed_masters = ["${master%:*}"]

[watch]
route_service = "$url"
registries = ["${regs[0]}", "${regs[1]}"]
api_key_file = "$work/$s.api-key"
state_dir = "$work/watch-$s"
approval = "$approval"
data = ["$work/data-$s"]
resync_secs = 10

[audit]
log = "$work/audit-$s.jsonl"
TOML
  TMPDIR="$work/tmp" "$bin/station" watch --config "$s.toml" 2> "watch-$s.log" & pids+=($!)
done

echo "=== creator: create, build, submit, follow ==="
export PHT_ROUTE_SERVICE="$url" PHT_CREATOR_ID=creator PHT_API_KEY_FILE="$work/creator.api-key"
# Under token auth the creator logs in to its registry with its id and API key.
# Its credentials go to the registry and to the service's token realm, nowhere else.
export PHT_REGISTRY_USERNAME=creator PHT_REGISTRY_PASSWORD="$(cat creator.api-key)"
export PHT_TOKEN_REALMS="$url/v1/registry-token"
cat > algo/count.sh <<'ALGO'
#!/bin/sh
set -e
rows=$(cat /opt/train_data/*/rows.csv | wc -l)
echo "$STATION_ID,$rows" >> /opt/pht_results/counts.csv
ALGO
id="demo-$(date +%s)"
pins=()
for s in hospital-a hospital-b hospital-c; do
  pins+=(--station "$s" --pin "$s=$(sed -n 's/^fingerprint: //p' "keys/$s.show")")
done
"$bin/train" create --files algo --entrypoint count.sh --train-id "$id" \
  --creator-id creator --creator-key keys/creator.key.pem "${pins[@]}" --out train
"$bin/train" image build train --master "$master" --entrypoint count.sh \
  --creator-key keys/creator.key.pem --tag "${regs[0]}/creator/submissions:$id" >/dev/null
"$bin/train" submit "${regs[0]}/creator/submissions:$id" >/dev/null
"$bin/train" status "$id" --follow & follow=$!

# hospital-b's operator: waits for the train in the queue, reviews it, approves it.
for _ in $(seq 1 300); do
  "$bin/station" queue --config hospital-b.toml 2>/dev/null | grep -q "files to review" && break
  sleep 0.2
done
echo "--- hospital-b's operator runs: station queue ---"
"$bin/station" queue --config hospital-b.toml
"$bin/station" approve "$id" --config hospital-b.toml
wait "$follow"
follow=

echo "=== creator: results ==="
"$bin/train" results "$id" --key keys/creator.key.pem --out results
echo "--- results for the creator ---"
cat results/counts.csv
echo "--- what each hospital counted ---"
for s in hospital-a hospital-b hospital-c; do echo "$s,$(wc -l < "data-$s/rows.csv")"; done
t_end=$(date +%s)
echo "demo done in $((t_end - t0)) s ($((t_end - t_built)) s after the build); logs in $work"
