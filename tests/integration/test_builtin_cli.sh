#!/usr/bin/env bash
# The built-in plugins through `agentcore plugin run` as an operator tries
# them, without a receiver: opendatabot in mock mode, config refusals, and
# webhook outcomes that need no server (refused address, closed port,
# filtered event). Deliveries to a live receiver are covered by
# tests/unit/test_cmd_plugin_run.c, which runs the same binary against a sink.
set -u
BIN="${AC_BINARY:?AC_BINARY must point at the agentcore binary}"
SRC="${AC_SOURCE_DIR:?}"
export AGENTCORE_LOG_LEVEL=error AGENTCORE_HOOK_TIMEOUT_MS=3000
unset AGENTCORE_HTTP_ALLOW_CIDRS
ODB="$SRC/plugins/opendatabot.lua"
WH="$SRC/plugins/webhooks.lua"
fail=0
pass=0
check() { # description, 0 = passed
  if [ "$2" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
has() { echo "$1" | grep -q -- "$2" && echo 0 || echo 1; }

out=$("$BIN" plugin check "$ODB" "$WH"); rc=$?
check "plugin check built-ins: exit 0" "$rc"
check "plugin check lists opendatabot" "$(has "$out" 'ok: opendatabot 1.0.0 \["agent_query"\]')"
check "plugin check lists webhooks" "$(has "$out" 'ok: webhooks 1.0.0 \["approval_hook","document_hook"\]')"

# opendatabot, mock mode (the default config)
ev='{"text":"ЄДРПОУ 14360570, 14360571, 123456789 та a00032129b"}'
out=$("$BIN" plugin run "$ODB" --hook onAgentQuery --event "$ev"); rc=$?
check "opendatabot mock: exit 0" "$rc"
check "opendatabot mock: valid code" "$(has "$out" '"edrpou":"14360570"')"
check "opendatabot mock: invalid code reported" "$(has "$out" '"checksumValid":false')"
check "opendatabot mock: longer run ignored" "$(echo "$out" | grep -q '12345678' && echo 1 || echo 0)"
check "opendatabot mock: glued code ignored" "$(echo "$out" | grep -q '00032129' && echo 1 || echo 0)"
check "opendatabot mock: source link" "$(has "$out" '"url":"https://opendatabot.ua/c/14360570"')"
again=$("$BIN" plugin run "$ODB" --hook onAgentQuery --event "$ev" --config '{"mode":"mock"}')
# the same members and values (key order may differ between runs)
strip() { echo "$1" | grep -o '"[A-Za-z]*":\("[^"]*"\|[0-9.]*\|true\|false\)' | grep -v durationMs | sort; }
check "opendatabot mock: deterministic" "$([ "$(strip "$out")" = "$(strip "$again")" ] && echo 0 || echo 1)"
out=$("$BIN" plugin run "$ODB" --hook onAgentQuery --event "$ev" --config '{"mode":"live"}'); rc=$?
check "opendatabot bad mode: exit 1 contract" "$([ $rc = 1 ] && has "$out" '"kind":"contract"')"
# api mode against an address the guard refuses: the result says so, the hook succeeds
out=$("$BIN" plugin run "$ODB" --hook onAgentQuery --event '{"text":"14360570"}' \
      --config '{"mode":"api","apiKey":"k","baseUrl":"http://127.0.0.1:1/api"}'); rc=$?
check "opendatabot api refused: exit 0" "$rc"
check "opendatabot api refused: lookupError" "$(has "$out" '"lookupError":"denied: ')"

# webhooks
appr='{"id":"ev-1","approvalId":"ap-1","data":{"amount":5}}'
out=$("$BIN" plugin run "$WH" --hook onApprovalCreated --event "$appr" --config '{}'); rc=$?
check "webhooks without url: exit 1 contract" "$([ $rc = 1 ] && has "$out" '"kind":"contract"')"
out=$("$BIN" plugin run "$WH" --hook onApprovalCreated --event "$appr" \
      --config '{"url":"http://127.0.0.1:1/hook"}'); rc=$?
check "webhooks to a refused address: exit 1 error" "$([ $rc = 1 ] && has "$out" '"kind":"error"')"
check "webhooks to a refused address: denied" "$(has "$out" 'denied: ')"
out=$(AGENTCORE_HTTP_ALLOW_CIDRS=127.0.0.0/8 "$BIN" plugin run "$WH" --hook onApprovalCreated \
      --event "$appr" --config '{"url":"http://127.0.0.1:1/hook"}'); rc=$?
check "webhooks to a closed port: exit 1 retry" "$([ $rc = 1 ] && has "$out" '"kind":"retry"')"
check "webhooks to a closed port: transport" "$(has "$out" 'transport: ')"
out=$("$BIN" plugin run "$WH" --hook onApprovalCreated --event "$appr" \
      --config '{"url":"http://127.0.0.1:1/hook","events":["document.ready"]}'); rc=$?
check "webhooks filtered event: exit 0, not delivered" "$([ $rc = 0 ] && has "$out" '"delivered":false')"
AGENTCORE_HTTP_ALLOW_CIDRS=bogus "$BIN" plugin run "$WH" --hook onApprovalCreated \
  --config '{"url":"http://127.0.0.1:1/"}' >/dev/null 2>&1
check "bad AGENTCORE_HTTP_ALLOW_CIDRS: exit 2" "$([ $? = 2 ] && echo 0 || echo 1)"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
