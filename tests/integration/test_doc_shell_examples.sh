#!/usr/bin/env bash
# The shell examples in README.md and docs/*.md run, against a real server
# on its own database, as a reader would paste them:
# - `curl` must get a 2xx answer (the docs' 127.0.0.1:8080 is this
#   server; TOKEN is a global admin token, as `scripts/dev run` prints);
#   a placeholder such as <eventId> is the member of that name in the
#   previous answer;
# - `build/agentcore plugin run|check` must not be a usage error (exit 2)
#   and `plugin run` must print its JSON outcome (an example that needs the
#   network or a receiver may end as a failed hook, exit 1);
# - whole-plugin Lua blocks of the same page are files named by their id
#   (weather.lua) next to `plugins/`, as in a checkout.
# The quick start (`scripts/dev ...`) is not run here: it starts the
# service itself and is tried on a clean clone instead.
set -u
BIN="${AC_BINARY:?AC_BINARY must point at the agentcore binary}"
SRC="${AC_SOURCE_DIR:?}"
BASE_URL="${AGENTCORE_TEST_DATABASE_URL:?start the test database first (scripts/dev test does)}"
tmp=$(mktemp -d)
db="doc_shell_$$"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  psql "$BASE_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
psql "$BASE_URL" -qc "CREATE DATABASE $db" >/dev/null || exit 1
AGENTCORE_DATABASE_URL=$(echo "$BASE_URL" | sed "s|///agentcore|///$db|")
export AGENTCORE_DATABASE_URL
export AGENTCORE_JWT_SECRET=doc-examples-secret-0123456789abcdef
export AGENTCORE_LOG_LEVEL=error AGENTCORE_HTTP_ALLOW_CIDRS=127.0.0.0/8

# a free port: a server that cannot listen exits at once
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 20000))
  AGENTCORE_LISTEN="127.0.0.1:$port" "$BIN" serve > "$tmp/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break 2
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=""
done
[ -n "$pid" ] || { echo "FAIL: the server did not start"; cat "$tmp/serve.log"; exit 1; }
TOKEN=$("$BIN" token --sub doc-admin --global \
  --permissions canManagePlugins,canManageNamespaces,canEmitEvents,canQueryPlugins)
api="http://127.0.0.1:$port/api/v1"
admin() { command curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@" >/dev/null; }
admin -d '{"id":"demo-dept","name":"Demo department"}' "$api/departments" &&
  admin -d '{"id":"demo","name":"Demo namespace","departmentId":"demo-dept"}' "$api/namespaces" ||
  { echo "FAIL: cannot create the demo namespace"; exit 1; }

# What an example's commands run as: curl checked for 2xx, the binary
# checked for usage errors; every failure is one line in $tmp/failures.
cat > "$tmp/env.sh" <<ENV
export TOKEN='$TOKEN'
curl() {
  local out code
  out=\$(command curl -sS -w '\n%{http_code}' "\$@" 2>&1)
  code=\${out##*\$'\n'}
  printf '%s\n' "\${out%\$'\n'*}" > "$tmp/last.json"
  case "\$code" in 2??) ;; *) echo "curl \$* answered \$code: \${out%\$'\n'*}" >> "$tmp/failures" ;; esac
}
agentcore() {
  local out rc
  out=\$("$BIN" "\$@" 2>/dev/null); rc=\$?
  if [ \$rc = 2 ] || { [ "\$1 \$2" = "plugin run" ] && ! printf '%s' "\$out" | grep -q '"ok":'; }; then
    echo "agentcore \$* exited \$rc: \$out" >> "$tmp/failures"
  fi
}
ENV

ran=0
: > "$tmp/failures"
for doc in "$SRC"/README.md "$SRC"/docs/*.md; do
  [ -e "$doc" ] || continue
  work="$tmp/work"; rm -rf "$work"; mkdir -p "$work"; ln -s "$SRC/plugins" "$work/plugins"
  # whole plugins of this page, by id; then each shell block
  awk -v dir="$work" '
    /^```lua/ { lua = 1; text = ""; next }
    /^```sh/ { sh = 1; n++; out = sprintf("%s/block-%03d.sh", dir, n); printf "" > out; next }
    /^```/ { if (lua && text ~ /^return \{/ && match(text, /id = "[a-z][a-z0-9_-]*"/)) {
               id = substr(text, RSTART + 6, RLENGTH - 7); printf "%s", text > (dir "/" id ".lua") }
             if (sh) close(out); lua = sh = 0; next }
    lua { text = text $0 "\n" }
    sh { print >> out }
  ' "$doc"
  for block in "$work"/block-*.sh; do
    [ -e "$block" ] || continue
    grep -q '^scripts/dev ' "$block" && continue
    ran=$((ran + 1))
    before=$(wc -l < "$tmp/failures")
    # the docs' server address is this one's; a <name> placeholder is
    # filled from the previous answer, where the line is run
    sed -e "s|127\.0\.0\.1:8080|127.0.0.1:$port|g" -e 's|build/agentcore|agentcore|g' \
        -e 's|<\([A-Za-z]*\)>|$(sed -n "s/.*\\"\1\\":\\"\\([^\\"]*\\)\\".*/\\1/p" '"$tmp"'/last.json \| head -1)|g' \
        "$block" > "$block.run"
    (cd "$work" && source "$tmp/env.sh" && source "$block.run") > /dev/null 2>&1
    if [ "$(wc -l < "$tmp/failures")" != "$before" ]; then
      echo "FAIL: $(basename "$doc") $(basename "$block" .sh):"; tail -n +"$((before + 1))" "$tmp/failures"
    fi
  done
done
failed=$(wc -l < "$tmp/failures")
echo "$ran shell examples ran, $failed commands failed"
[ "$failed" = 0 ] && [ "$ran" -gt 0 ]
