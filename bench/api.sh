#!/usr/bin/env bash
# bench/api.sh — benchmark items 3 to 9 (docs/benchmarks.md) against a real server and a real
# PostgreSQL (started by scripts/dev bench), each as a ratio or figure
# measured in this run. Loopback only; every load is bounded in time
# (about 22 loads of BENCH_SECONDS each, plus the event drain of item 5).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="$ROOT/build/agentcore"
BASE_URL_DB="${AGENTCORE_TEST_DATABASE_URL:?start the database first (scripts/dev bench does)}"
DUR="${BENCH_SECONDS:-5}"
THREADS=4
PORT=18480; BASELINE_PORT=18481; SINK_PORT=18482; UPSTREAM_PORT=18483; HANG_SINK_PORT=18484; CALM_SINK_PORT=18485; DEAD_SINK_PORT=18486
SECRET=bench-secret-0123456789abcdef0123456789
WORK=$(mktemp -d)
pids=()
alive() { [ -r "/proc/$1/status" ] && ! grep -qs '^State:.*Z' "/proc/$1/status"; }
# SIGTERM, then SIGKILL for whatever still runs 5 s later (a server whose
# shutdown waits on plugin calls), so the bench always ends
cleanup() {
  if [ "${#pids[@]}" -gt 0 ] && ! alive "${pids[0]}"; then
    echo "   (agentcore serve was no longer running: the bench stopped there)"
  fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for _ in $(seq 50); do
    left=0; for p in "${pids[@]}"; do alive "$p" && left=1; done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  for p in "${pids[@]}"; do
    if alive "$p"; then echo "   ($(tr '\0' ' ' < "/proc/$p/cmdline")did not stop within 5 s of SIGTERM: killed)"; kill -KILL "$p" 2>/dev/null || true; fi
  done
  wait 2>/dev/null || true; rm -rf "$WORK"; }
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
# item 8: a plugin whose query waits on a local upstream that answers in 50 ms
cat > "$WORK/plugins/upstream.lua" <<LUA
return { id = "upstream", capabilities = { "agent_query" },
  onAgentQuery = function(q, context)
    local res, err = context.http.get("http://127.0.0.1:$UPSTREAM_PORT/")
    if not res then error(err, 0) end
    return { { type = "upstream", title = tostring(res.status) } } end }
LUA
# item 7's noise: a plugin that spins until its deadline
cat > "$WORK/plugins/noisy_spin.lua" <<'LUA'
return { id = "noisy-spin", capabilities = { "agent_query" },
  onAgentQuery = function() while true do end end }
LUA

export AGENTCORE_DATABASE_URL="$DBURL" AGENTCORE_JWT_SECRET="$SECRET" AGENTCORE_LOG_LEVEL=error \
  AGENTCORE_LISTEN="127.0.0.1:$PORT" AGENTCORE_HTTP_ALLOW_CIDRS=127.0.0.0/8 \
  AGENTCORE_PLUGIN_DIRS="$WORK/plugins" AGENTCORE_HTTP_RATE=100000 AGENTCORE_HTTP_BURST=100000 \
  AGENTCORE_EVENT_RATE=1000000 AGENTCORE_EVENT_BURST=1000000
"$BIN" serve & pids+=($!)
"$ROOT/build/mhd_baseline" "$BASELINE_PORT" "$THREADS" & pids+=($!)
"$ROOT/build/mhd_baseline" "$SINK_PORT" "$THREADS" & pids+=($!)
"$ROOT/build/mhd_baseline" "$UPSTREAM_PORT" "$THREADS" 50 & pids+=($!)
"$ROOT/build/mhd_baseline" "$HANG_SINK_PORT" "$THREADS" 0 5 & pids+=($!)
"$ROOT/build/mhd_baseline" "$CALM_SINK_PORT" "$THREADS" 0 0 & pids+=($!)
"$ROOT/build/mhd_baseline" "$DEAD_SINK_PORT" "$THREADS" 0 100 & pids+=($!) # never answers
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done

TOKEN=$("$BIN" token --sub bench --global --permissions canManagePlugins,canManageNamespaces,canEmitEvents,canQueryPlugins)
API="http://127.0.0.1:$PORT/api/v1"
call() { curl -sf -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@" >/dev/null; }
call -XPOST -d '{"id":"bench","name":"Bench"}' "$API/departments"
for ns in q1 q20 ev noisy up ev0 ev5 evdead; do call -XPOST -d "{\"id\":\"$ns\",\"name\":\"$ns\",\"departmentId\":\"bench\"}" "$API/namespaces"; done
call -XPOST -d '{}' "$API/namespaces/q1/plugins/opendatabot"
call -XPOST -d '{}' "$API/namespaces/q20/plugins/echo1"
call -XPOST -d '{}' "$API/namespaces/noisy/plugins/noisy-spin"
call -XPOST -d '{}' "$API/namespaces/up/plugins/upstream"
call -XPOST -d "{\"config\":{\"url\":\"http://127.0.0.1:$CALM_SINK_PORT/hook\"}}" "$API/namespaces/ev0/plugins/webhooks"
call -XPOST -d "{\"config\":{\"url\":\"http://127.0.0.1:$HANG_SINK_PORT/hook\"}}" "$API/namespaces/ev5/plugins/webhooks"
call -XPOST -d "{\"config\":{\"url\":\"http://127.0.0.1:$DEAD_SINK_PORT/hook\"}}" "$API/namespaces/evdead/plugins/webhooks"
call -XPOST -d "{\"config\":{\"url\":\"http://127.0.0.1:$SINK_PORT/hook\",\"secret\":\"s3cret\"}}" "$API/namespaces/ev/plugins/webhooks"

post_script() { # body -> wrk script path
  local f="$WORK/post$RANDOM.lua"
  printf 'wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\nwrk.headers["Authorization"] = "Bearer %s"\n' "$1" "$TOKEN" > "$f"
  echo "$f"
}
rps() { awk '/Requests\/sec/ {print $2}'; }
p99() { awk '/ 99%/ {print $2}'; }
# wrk's latency ("850.00us", "1.23ms", "2.01s", "1.50m") in ms; "n/a" when
# wrk printed none (no request completed)
ms() { awk '{ v = $1 + 0; u = $1; sub(/^[0-9.]+/, "", u)
  if (u == "us") v /= 1000; else if (u == "s") v *= 1000; else if (u == "m") v *= 60000
  else if (u != "ms") { print "n/a"; exit } printf "%.3f\n", v }'; }
# a / b to 3 decimals, "n/a" when either is missing or b is 0
ratio() { if [ -n "$1" ] && [ -n "$2" ] && [ "$(echo "$2 > 0" | bc)" = 1 ]; then echo "scale=3; $1 / $2" | bc; else echo n/a; fi; }
# "; N timeouts, M other socket errors, K non-2xx" from a wrk output, empty
# when there were none
failures() { awk '/Socket errors/ { gsub(",", ""); e = $4 + $6 + $8; t = $10 } /Non-2xx/ { n = $NF }
  END { if (t + e + n > 0) printf "; %d timeouts, %d other socket errors, %d non-2xx", t, e, n }'; }
# BENCH_ITEMS="4 9" runs only those items (all when unset)
want() { [ -z "${BENCH_ITEMS:-}" ] || [[ " $BENCH_ITEMS " == *" $1 "* ]]; }
# p99 in ms of a wrk --latency output, "n/a" when no request completed
p99ms() { if grep -q '^ *0 requests in' "$1"; then echo n/a; else p99 < "$1" | ms; fi; }

# the query every /query load posts
q=$(post_script '"{\"query\":\"EDRPOU 14360570 and 00032129\"}"')
if want 3; then
echo "3. API: wrk -t2 -c64 -d${DUR}s, GET /api/v1/plugins (JWT checked) vs a minimal libmicrohttpd server ($THREADS threads each)"
a=$(wrk -t2 -c64 -d"${DUR}s" -H "Authorization: Bearer $TOKEN" "$API/plugins" | rps)
b=$(wrk -t2 -c64 -d"${DUR}s" "http://127.0.0.1:$BASELINE_PORT/" | rps)
echo "   agentcore $a req/s, baseline $b req/s, ratio $(ratio "$a" "$b")x (target >= 0.5x)"

fi
if want 4; then
echo "4. Query enrichment with opendatabot: POST /query vs the same POST to the minimal libmicrohttpd server"
wrk -t1 -c1 -d"${DUR}s" --latency -s "$q" "$API/namespaces/q1/query" > "$WORK/one"
echo "   1 connection: $(rps < "$WORK/one") req/s, p99 $(p99ms "$WORK/one") ms (target <= 1 ms)$(failures < "$WORK/one")"
# three rounds, each the engine then the baseline, so a machine whose speed
# drifts over the run shifts both sides of a round alike; the median round
# is the figure
rounds=""
for round in 1 2 3; do
  a=$(wrk -t2 -c64 -d"${DUR}s" -s "$q" "$API/namespaces/q1/query" | rps)
  b=$(wrk -t2 -c64 -d"${DUR}s" -s "$q" "http://127.0.0.1:$BASELINE_PORT/" | rps)
  r=$(ratio "$a" "$b")
  echo "   64 connections, round $round: agentcore $a req/s, baseline $b req/s, ratio ${r}x"
  rounds="$rounds $r"
done
echo "   64 connections: median ratio $(echo "$rounds" | tr ' ' '\n' | grep -v '^$' | sort -n | sed -n 2p)x (target >= 0.5x)"

fi
if want 6; then
echo "6. Growth: query dispatch with 1 vs 20 plugins enabled in a namespace"
# each measured after a second of warm-up: states built, plugins past
# their probation on the workers
wrk -t2 -c16 -d1s -s "$q" "$API/namespaces/q20/query" > /dev/null
one=$(wrk -t2 -c16 -d"${DUR}s" -s "$q" "$API/namespaces/q20/query" | rps)
for i in $(seq 2 20); do call -XPOST -d '{}' "$API/namespaces/q20/plugins/echo$i"; done
wrk -t2 -c16 -d1s -s "$q" "$API/namespaces/q20/query" > /dev/null
twenty=$(wrk -t2 -c16 -d"${DUR}s" -s "$q" "$API/namespaces/q20/query" | rps)
echo "   1 plugin $one req/s, 20 plugins $twenty req/s: 20 plugins cost $(ratio "$one" "$twenty")x the time of 1 (target <= 4x; linear would be 20x)"
echo "   ... and 1 vs 10,000 namespaces"
before=$(wrk -t2 -c16 -d"${DUR}s" -s "$q" "$API/namespaces/q1/query" | rps)
psql "$DBURL" -qc "INSERT INTO namespaces (id, name, department_id) SELECT 'g' || i, 'g' || i, 'bench' FROM generate_series(1, 10000) i" >/dev/null
after=$(wrk -t2 -c16 -d"${DUR}s" -s "$q" "$API/namespaces/q1/query" | rps)
echo "   1 namespace $before req/s, 10,000 namespaces $after req/s: ratio $(ratio "$before" "$after")x (target <= 1.2x)"

fi
if want 5; then
echo "5. Events: accepted events/s vs the database's floor (pgbench doing what one event costs), and webhook deliveries/s vs wrk posting straight to the sink"
# the floor: one transaction per event inserting it and its run (one
# statement), on 16 connections as the load below; its rows are final, so
# nothing delivers them
cat > "$WORK/floor.sql" <<'SQL'
WITH e AS (INSERT INTO events (namespace_id, type, payload, status) VALUES ('evfloor', 'approval.created', '{"approvalId":"a-1","data":{"n":1}}', 'done') RETURNING id) INSERT INTO event_runs (event_id, plugin_id, namespace_id, status) SELECT id, 'webhooks', 'evfloor', 'ok' FROM e;
SQL
call -XPOST -d '{"id":"evfloor","name":"evfloor","departmentId":"bench"}' "$API/namespaces"
PGBENCH=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)
floor=$("$PGBENCH" -n -c16 -j2 -T"$DUR" -f "$WORK/floor.sql" "$DBURL" 2>/dev/null | awk '/^tps/ {print $3; exit}')
echo "   floor: $floor transactions/s (pgbench, 16 clients, one event and its run each)"
psql "$DBURL" -qc "DELETE FROM events WHERE namespace_id = 'evfloor'" # not the engine's to count
e=$(post_script '"{\"type\":\"approval.created\",\"approvalId\":\"a-1\",\"data\":{\"n\":1}}"')
start=$(date +%s.%N) # deliveries start as soon as the first event is accepted
acc=$(wrk -t2 -c16 -d"${DUR}s" -s "$e" "$API/namespaces/ev/events" | rps)
echo "   accepted: $acc events/s, $(ratio "$acc" "$floor")x the floor (target >= 1.0x)"
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

fi
if want 7; then
echo "7. Isolation: another namespace's /query, then /healthz (wrk -c16 each), without and with 32 connections on a namespace whose plugin spins until its deadline"
# one measurement of each target in turn; prints "query_rps query_p99 health_rps health_p99"
# and leaves wrk's failure notes in $WORK/fail.q and $WORK/fail.h
measure() {
  wrk -t2 -c16 -d"${DUR}s" --timeout 2s --latency -s "$q" "$API/namespaces/q1/query" > "$WORK/m.q" || true
  wrk -t2 -c16 -d"${DUR}s" --timeout 2s --latency "http://127.0.0.1:$PORT/healthz" > "$WORK/m.h" || true
  failures < "$WORK/m.q" > "$WORK/fail.q"; failures < "$WORK/m.h" > "$WORK/fail.h"
  echo "$(rps < "$WORK/m.q") $(p99ms "$WORK/m.q") $(rps < "$WORK/m.h") $(p99ms "$WORK/m.h")"
}
read -r q0 qp0 h0 hp0 <<< "$(measure)"
echo "   no noise:   /query $q0 req/s, p99 $qp0 ms$(cat "$WORK/fail.q"); /healthz $h0 req/s, p99 $hp0 ms$(cat "$WORK/fail.h")"
# the noise covers both measurements: it starts a second before and ends a
# second after; its connections wait out the hook timeout (5 s by default)
wrk -t1 -c32 -d"$((2 * DUR + 2))s" --timeout 30s -s "$q" "$API/namespaces/noisy/query" > "$WORK/noise" &
noise=$!
sleep 1
read -r q1 qp1 h1 hp1 <<< "$(measure)"
wait "$noise" || true
echo "   with noise: /query $q1 req/s, p99 $qp1 ms$(cat "$WORK/fail.q"); /healthz $h1 req/s, p99 $hp1 ms$(cat "$WORK/fail.h")"
echo "   noisy namespace: $(awk '/requests in/ {print $1}' "$WORK/noise") answers to its 32 connections$(failures < "$WORK/noise")"
echo "   p99 with noise: /query $qp1 ms, /healthz $hp1 ms (target <= 100 ms); throughput with/without noise: /query $(ratio "$q1" "$q0")x, /healthz $(ratio "$h1" "$h0")x (target >= 0.5x)"

fi
if want 8; then
echo "8. Waiting without a thread: POST /query whose plugin calls an upstream answering in 50 ms, vs the upstream alone (its ceiling: connections / 50 ms)"
for c in 64 256; do
  wrk -t2 -c"$c" -d"${DUR}s" --timeout 5s --latency "http://127.0.0.1:$UPSTREAM_PORT/" > "$WORK/u.alone" || true
  wrk -t2 -c"$c" -d"${DUR}s" --timeout 5s --latency -s "$q" "$API/namespaces/up/query" > "$WORK/u.engine" || true
  ua=$(rps < "$WORK/u.alone"); ue=$(rps < "$WORK/u.engine")
  echo "   $c connections: agentcore $ue req/s, p99 $(p99ms "$WORK/u.engine") ms$(failures < "$WORK/u.engine"); upstream alone $ua req/s, p99 $(p99ms "$WORK/u.alone") ms: ratio $(ratio "$ue" "$ua")x (target >= 0.9x, p99 <= 2x the upstream's)"
done

fi
if want 9; then
echo "9. Delivery with a receiver that hangs on 5% of requests vs the same receiver never hanging (default configuration, hook timeout 5 s)"
# each run: wrk posts events for DUR s, then deliveries get DUR + 6 s more
# (a hung delivery's 5 s timeout and its first retry 5 s later fit in it);
# what was delivered (runs ok) in that window
deliver_rate() { # namespace -> "deliveries/s delivered accepted"
  local ns="$1" b okq
  okq="SELECT count(*) FROM event_runs r JOIN events e ON e.id = r.event_id WHERE e.namespace_id = '$ns' AND r.status = 'ok'"
  local evq="SELECT count(*) FROM events WHERE namespace_id = '$ns'"
  local before; before=$(psql "$DBURL" -qAtc "$okq") # an earlier load's runs do not count
  local events0; events0=$(psql "$DBURL" -qAtc "$evq")
  b=$(post_script '"{\"type\":\"approval.created\",\"approvalId\":\"a-1\",\"data\":{\"n\":1}}"')
  local t0; t0=$(date +%s.%N)
  wrk -t1 -c4 -d"${DUR}s" -s "$b" "$API/namespaces/$ns/events" > /dev/null || true
  sleep $((DUR + 6))
  local ok; ok=$(psql "$DBURL" -qAtc "$okq")
  local events; events=$(psql "$DBURL" -qAtc "$evq")
  echo "$(echo "scale=1; ($ok - $before) / ($(date +%s.%N) - $t0)" | bc) $((ok - before)) $((events - events0))"
}
deliver_rate ev0 > /dev/null # warm-up: states built, connections open
read -r d0 n0 a0 <<< "$(deliver_rate ev0)"
read -r d5 n5 a5 <<< "$(deliver_rate ev5)"
# intake at 4 connections varies between loads by a third, so the ratio
# compares what each load delivered per accepted event
echo "   no hangs: $d0 deliveries/s ($n0 of $a0 accepted events delivered); 5% hanging: $d5 deliveries/s ($n5 of $a5): ratio $(ratio "$(echo "scale=6; $n5 / $a5" | bc)" "$(echo "scale=6; $n0 / $a0" | bc)")x (target >= 0.9x)"
echo "   ... and another namespace's delivery latency while one namespace's receiver never answers"
# p99 in ms from an event's acceptance to its delivery, for ev0's runs made after $1 (an ISO time)
latency_p99() {
  psql "$DBURL" -qAtc "SELECT round(percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM r.updated_at - e.created_at) * 1000)) FROM event_runs r JOIN events e ON e.id = r.event_id WHERE e.namespace_id = 'ev0' AND r.status = 'ok' AND e.created_at > '$1'"
}
b=$(post_script '"{\"type\":\"approval.created\",\"approvalId\":\"a-1\",\"data\":{\"n\":1}}"')
t=$(psql "$DBURL" -qAtc "SELECT now()")
wrk -t1 -c1 -d"${DUR}s" -s "$b" "$API/namespaces/ev0/events" > /dev/null || true
sleep 3
alone=$(latency_p99 "$t")
t=$(psql "$DBURL" -qAtc "SELECT now()")
wrk -t1 -c4 -d"$((DUR + 2))s" -s "$b" "$API/namespaces/evdead/events" > /dev/null &
dead=$!
sleep 1
wrk -t1 -c1 -d"${DUR}s" -s "$b" "$API/namespaces/ev0/events" > /dev/null || true
wait "$dead" || true
sleep 3
beside=$(latency_p99 "$t")
stuck=$(psql "$DBURL" -qAtc "SELECT count(*) FROM event_runs r JOIN events e ON e.id = r.event_id WHERE e.namespace_id = 'evdead' AND r.status <> 'ok'")
echo "   p99 acceptance to delivery: $alone ms alone, $beside ms beside $stuck undelivered runs to a dead receiver (target: within 1,000 ms of alone)"
fi
