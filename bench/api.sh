#!/usr/bin/env bash
# bench/api.sh — SPEC §11 items 3 to 6 against a real server and a real
# PostgreSQL (started by scripts/dev bench), each as a ratio or figure
# measured in this run. Loopback only; every load is bounded in time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/build/agentcore"
BASE_URL_DB="${AGENTCORE_TEST_DATABASE_URL:?start the database first (scripts/dev bench does)}"
DUR="${BENCH_SECONDS:-5}"
THREADS=4
PORT=18480; BASELINE_PORT=18481; SINK_PORT=18482
SECRET=bench-secret-0123456789abcdef0123456789
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

db=bench_$$
psql "$BASE_URL_DB" -qc "CREATE DATABASE $db" >/dev/null
DBURL=$(echo "$BASE_URL_DB" | sed "s|///agentcore|///$db|")
trap 'cleanup; psql "$BASE_URL_DB" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true' EXIT

# 20 trivial agent_query plugins for the growth benchmark
mkdir -p "$WORK/plugins"
for i in $(seq 1 20); do
  cat > "$WORK/plugins/echo$i.lua" <<LUA
return { id = "echo$i", capabilities = { "agent_query" },
  onAgentQuery = function(q) return { { type = "echo", title = q.text } } end }
LUA
done

export AGENTCORE_DATABASE_URL="$DBURL" AGENTCORE_JWT_SECRET="$SECRET" AGENTCORE_LOG_LEVEL=error \
  AGENTCORE_LISTEN="127.0.0.1:$PORT" AGENTCORE_HTTP_ALLOW_CIDRS=127.0.0.0/8 \
  AGENTCORE_PLUGIN_DIRS="$WORK/plugins" AGENTCORE_HTTP_RATE=100000 AGENTCORE_HTTP_BURST=100000
"$BIN" serve & pids+=($!)
"$ROOT/build/mhd_baseline" "$BASELINE_PORT" "$THREADS" & pids+=($!)
"$ROOT/build/mhd_baseline" "$SINK_PORT" "$THREADS" & pids+=($!)
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

TOKEN=$("$BIN" token --sub bench --global --permissions canManagePlugins,canManageNamespaces,canEmitEvents,canQueryPlugins)
API="http://127.0.0.1:$PORT/api/v1"
call() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@" >/dev/null; }
call -XPOST -d '{"id":"bench","name":"Bench"}' "$API/departments"
for ns in q1 q20 ev; do call -XPOST -d "{\"id\":\"$ns\",\"name\":\"$ns\",\"departmentId\":\"bench\"}" "$API/namespaces"; done
call -XPOST -d '{}' "$API/namespaces/q1/plugins/opendatabot"
call -XPOST -d '{}' "$API/namespaces/q20/plugins/echo1"
call -XPOST -d "{\"config\":{\"url\":\"http://127.0.0.1:$SINK_PORT/hook\",\"secret\":\"s3cret\"}}" "$API/namespaces/ev/plugins/webhooks"

post_script() { # body -> wrk script path
  local f="$WORK/post$RANDOM.lua"
  printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$1" "$TOKEN" > "$f"
  echo "$f"
}
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '/ 99%/ {print $2}'; }

echo "3. API: wrk -t2 -c64 -d${DUR}s, GET /api/v1/plugins (JWT checked) vs a minimal libmicrohttpd server ($THREADS threads each)"
a=$(wrk -t2 -c64 -d"${DUR}s" -H "Authorization: Bearer $TOKEN" "$API/plugins" | rps)
b=$(wrk -t2 -c64 -d"${DUR}s" "http://127.0.0.1:$BASELINE_PORT/" | rps)
echo "   agentcore $a req/s, baseline $b req/s, ratio $(echo "scale=3; $a / $b" | bc)x (target >= 0.5x)"

echo "4. Query enrichment with opendatabot: POST /query"
q=$(post_script '"{\"query\":\"EDRPOU 14360570 and 00032129\"}"')
for c in 1 64; do
  out=$(wrk -t$([ $c = 1 ] && echo 1 || echo 2) -c$c -d"${DUR}s" --latency -s "$q" "$API/namespaces/q1/query")
  echo "   $c connection(s): $(echo "$out" | rps) req/s, p99 $(echo "$out" | p99)"
done

echo "6. Growth: query dispatch with 1 vs 20 plugins enabled in a namespace"
one=$(wrk -t2 -c16 -d"${DUR}s" -s "$q" "$API/namespaces/q20/query" | rps)
for i in $(seq 2 20); do call -XPOST -d '{}' "$API/namespaces/q20/plugins/echo$i"; done
twenty=$(wrk -t2 -c16 -d"${DUR}s" -s "$q" "$API/namespaces/q20/query" | rps)
echo "   1 plugin $one req/s, 20 plugins $twenty req/s: 20 plugins cost $(echo "scale=2; $one / $twenty" | bc)x the time of 1 (linear would be <= 20x)"
echo "   ... and 1 vs 10,000 namespaces"
before=$(wrk -t2 -c16 -d"${DUR}s" -s "$q" "$API/namespaces/q1/query" | rps)
psql "$DBURL" -qc "INSERT INTO namespaces (id, name, department_id) SELECT 'g' || i, 'g' || i, 'bench' FROM generate_series(1, 10000) i" >/dev/null
after=$(wrk -t2 -c16 -d"${DUR}s" -s "$q" "$API/namespaces/q1/query" | rps)
echo "   1 namespace $before req/s, 10,000 namespaces $after req/s: ratio $(echo "scale=3; $before / $after" | bc)x (target <= 1.2x)"

echo "5. Events: accepted events/s, and webhook deliveries/s vs wrk posting straight to the sink"
e=$(post_script '"{\"type\":\"approval.created\",\"approvalId\":\"a-1\",\"data\":{\"n\":1}}"')
start=$(date +%s.%N) # deliveries start as soon as the first event is accepted
acc=$(wrk -t2 -c16 -d"${DUR}s" -s "$e" "$API/namespaces/ev/events" | rps)
echo "   accepted: $acc events/s"
total=$(psql "$DBURL" -qAtc "SELECT count(*) FROM event_runs")
for _ in $(seq 600); do
  left=$(psql "$DBURL" -qAtc "SELECT count(*) FROM event_runs WHERE status NOT IN ('ok','error','timeout','memory','skipped')")
  [ "$left" = 0 ] && break
  sleep 0.5
done
secs=$(echo "$(date +%s.%N) - $start" | bc)
done_runs=$(psql "$DBURL" -qAtc "SELECT count(*) FROM event_runs WHERE status = 'ok'")
deliv=$(echo "scale=1; $done_runs / $secs" | bc)
s=$(post_script '"{\"event\":\"approval.created\"}"')
direct=$(wrk -t2 -c16 -d"${DUR}s" -s "$s" "http://127.0.0.1:$SINK_PORT/hook" | rps)
echo "   delivered $done_runs of $total runs in ${secs}s (intake included): $deliv deliveries/s vs $direct req/s posting straight to the sink (ratio $(echo "scale=4; $deliv / $direct" | bc)x)"
