#!/usr/bin/env bash
# agentcore plugin run/check as a plugin author uses them: every hostile
# plugin ends within the timeout plus one second with the expected kind,
# the process never crashes, and exit codes follow docs/cli.md.
set -u
BIN="${AC_BINARY:?AC_BINARY must point at the agentcore binary}"
SRC="${AC_SOURCE_DIR:?}"
export AGENTCORE_HOOK_TIMEOUT_MS=300 AGENTCORE_LUA_MEMORY_MB=64 AGENTCORE_LOG_LEVEL=error
fail=0
pass=0
check() { # description, condition result
  if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}

for f in "$SRC"/tests/lua/hostile/*.lua; do
  name=$(basename "$f")
  expect=$(sed -n 's/^-- expect: //p' "$f" | head -1)
  # a fixture may ask for a longer timeout for work that is slow to fail
  timeout_ms=$(sed -n 's/^-- timeout-ms: //p' "$f" | head -1)
  timeout_ms=${timeout_ms:-300}
  hook=onAgentQuery event='{"text":"x"}'
  if [ "$(sed -n 's/^-- stage: //p' "$f" | head -1)" = approval ]; then
    hook=onApprovalCreated event='{"approvalId":"a-1"}'
  fi
  start=$(date +%s%N)
  out=$(AGENTCORE_HOOK_TIMEOUT_MS=$timeout_ms "$BIN" plugin run "$f" --hook "$hook" \
        --event "$event" --config '{}' 2>/dev/null)
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  # two phases (load, call) each bounded by timeout + 1 s
  limit=$(( 2 * timeout_ms + 2000 ))
  check "$name: finished in ${ms} ms (limit $limit)" "$([ "$ms" -le "$limit" ] && echo 0 || echo 1)"
  check "$name: exit code $rc is 0 or 1 (no crash)" "$([ "$rc" -le 1 ] && echo 0 || echo 1)"
  if [ "$expect" = ok ]; then
    check "$name: ok output" "$(echo "$out" | grep -q '"ok":true' && echo 0 || echo 1)"
  else
    check "$name: kind $expect in $out" "$(echo "$out" | grep -q "\"kind\":\"$expect\"" && echo 0 || echo 1)"
  fi
done

# exit codes and output shapes
good="$SRC/tests/lua/good/full.lua"
out=$("$BIN" plugin run "$good" --hook onAgentQuery --event '{"text":"hi"}'); rc=$?
check "good plugin: exit 0" "$rc"
check "good plugin: result" "$(echo "$out" | grep -q '"title":"echo: hi"' && echo 0 || echo 1)"
check "good plugin: durationMs" "$(echo "$out" | grep -q '"durationMs":' && echo 0 || echo 1)"
out=$("$BIN" plugin run "$good" --hook onDocumentReady --event '{"documentId":"d-1"}'); rc=$?
check "document hook: exit 0 and event shape" "$([ $rc = 0 ] && echo "$out" | grep -q '"seen":"d-1"' && echo 0 || echo 1)"
"$BIN" plugin run "$good" --hook nope >/dev/null 2>&1; check "unknown hook: exit 2" "$([ $? = 2 ] && echo 0 || echo 1)"
"$BIN" plugin run "$good" --hook init --event '{bad' >/dev/null 2>&1; check "bad JSON: exit 2" "$([ $? = 2 ] && echo 0 || echo 1)"
"$BIN" plugin run >/dev/null 2>&1; check "no args: exit 2" "$([ $? = 2 ] && echo 0 || echo 1)"
out=$("$BIN" plugin run "$SRC/tests/lua/contract/missing_function.lua" --hook onAgentQuery); rc=$?
check "contract failure: exit 1 kind contract" "$([ $rc = 1 ] && echo "$out" | grep -q '"kind":"contract"' && echo 0 || echo 1)"
"$BIN" plugin check "$good" >/dev/null; check "check good: exit 0" "$?"
"$BIN" plugin check "$good" "$SRC/tests/lua/contract/bad_id.lua" >/dev/null; check "check bad: exit 1" "$([ $? = 1 ] && echo 0 || echo 1)"
out=$("$BIN" plugin check "$good" "$good"); check "check duplicate ids: reported" "$(echo "$out" | grep -q 'already used' && echo 0 || echo 1)"
# secrets are redacted from a plugin's log lines as in the server: in the
# message, in field values and in field names
tmp=$(mktemp -d)
cat > "$tmp/secretive.lua" <<'LUA'
return { id = "secretive", capabilities = { "agent_query" },
  configSchema = { type = "object", properties = { apiKey = { type = "string", writeOnly = true } } },
  onAgentQuery = function(q, context)
    local k = context.config.apiKey
    context.log.warn("calling with " .. k, { key = k, [k] = "as a name" })
    return {}
  end }
LUA
logs=$(AGENTCORE_LOG_LEVEL=info "$BIN" plugin run "$tmp/secretive.lua" --hook onAgentQuery \
       --event '{"text":"x"}' --config '{"apiKey":"sk-live-0123456789"}' 2>&1 >/dev/null)
check "plugin run: the log line was written" "$(echo "$logs" | grep -q 'calling with' && echo 0 || echo 1)"
check "plugin run: secrets redacted in message, values and names" \
  "$(echo "$logs" | grep -q 'sk-live-0123456789' && echo 1 || echo 0)"
err=$("$BIN" plugin run "$tmp/secretive.lua" --hook onAgentQuery --config '{"apiKey": sk-live-0123456789}' 2>&1 >/dev/null)
check "plugin run: malformed --config located, not quoted" \
  "$(echo "$err" | grep -q 'line 1 column' && ! echo "$err" | grep -q 'sk-live' && echo 0 || echo 1)"
rm -rf "$tmp"

for c in "plugin --help" "plugin run --help" "plugin check --help" "version --help" "--help" "version"; do
  $BIN $c >/dev/null 2>&1; check "$c: exit 0" "$?"
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
