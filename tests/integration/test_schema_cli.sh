#!/usr/bin/env bash
# test_schema_cli.sh — `agentcore schema validate` through the real binary:
# output shape and exit statuses of docs/cli.md (0 valid, 1 invalid, 2 usage
# or unsupported schema), .json and .lua schemas, stdin instances.
set -uo pipefail

BIN="${AC_BINARY:?AC_BINARY must point at the agentcore binary}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

check() { # check NAME WANT_STATUS WANT_STDOUT_SUBSTRING -- command...
  local name="$1" want_status="$2" want_out="$3"
  shift 4
  local out status
  out="$("$@" 2>"$TMP/stderr")"
  status=$?
  if [ "$status" = "$want_status" ] && [[ "$out" == *"$want_out"* ]]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL $name: status $status (want $want_status), stdout: $out, stderr: $(cat "$TMP/stderr")"
  fi
}

cat >"$TMP/schema.json" <<'JSON'
{"type": "object",
 "properties": {"url": {"type": "string", "format": "uri"},
                "timeoutMs": {"type": "integer", "minimum": 1, "maximum": 30000},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}}},
 "required": ["url"], "additionalProperties": false}
JSON
echo '{"url": "https://hooks.example.com/in", "timeoutMs": 500}' >"$TMP/good.json"
echo '{"timeoutMs": 0, "headers": {"x-a": 1}, "extra": true}' >"$TMP/bad.json"
echo '{"url": "https://a.example", "url": "https://b.example"}' >"$TMP/dup.json"
echo '{"properties": {"url": {"$ref": "#/$defs/u"}}}' >"$TMP/unsupported.json"
cat >"$TMP/plugin.lua" <<'LUA'
return {
  id = "schema-cli-sample", name = "Schema CLI sample", category = "test",
  configSchema = { type = "object", properties = { url = { type = "string", format = "uri" },
                   mode = { type = "string", enum = { "mock", "api" }, default = "mock" } },
                   required = { "url" }, additionalProperties = false },
  capabilities = { PluginCapability.AgentQuery },
  onAgentQuery = function(query, context) return {} end,
}
LUA

check "valid instance" 0 '{"valid":true,"errors":[]}' -- "$BIN" schema validate "$TMP/schema.json" "$TMP/good.json"
check "invalid instance lists every error" 1 \
  '{"valid":false,"errors":[{"path":"","keyword":"required","message":"must have required property \"url\""},{"path":"/timeoutMs","keyword":"minimum","message":"must be >= 1"},{"path":"/headers/x-a","keyword":"type","message":"must be string"},{"path":"/extra","keyword":"additionalProperties","message":"must NOT have additional property \"extra\""}]}' \
  -- "$BIN" schema validate "$TMP/schema.json" "$TMP/bad.json"
check "instance on stdin" 1 '"valid":false' -- sh -c "\"$BIN\" schema validate \"$TMP/schema.json\" - <\"$TMP/bad.json\""
check "unsupported keyword exits 2" 2 '' -- "$BIN" schema validate "$TMP/unsupported.json" "$TMP/good.json"
if ! grep -q 'unsupported keyword "\$ref"' "$TMP/stderr"; then
  failed=$((failed + 1)); echo "FAIL unsupported keyword not named on stderr: $(cat "$TMP/stderr")"
fi
check "duplicate keys exit 2" 2 '' -- "$BIN" schema validate "$TMP/schema.json" "$TMP/dup.json"
check "missing file exits 2" 2 '' -- "$BIN" schema validate "$TMP/schema.json" "$TMP/absent.json"
check "plugin schema, valid" 0 '{"valid":true,"errors":[]}' -- sh -c "echo '{\"url\":\"https://x.example\"}' | \"$BIN\" schema validate \"$TMP/plugin.lua\" -"
check "plugin schema, invalid" 1 '"path":"/mode","keyword":"enum"' -- sh -c "echo '{\"url\":\"https://x.example\",\"mode\":\"live\"}' | \"$BIN\" schema validate \"$TMP/plugin.lua\" -"
check "--help" 0 'usage: agentcore schema validate SCHEMA INSTANCE' -- "$BIN" schema --help
check "validate --help" 0 'usage: agentcore schema validate' -- "$BIN" schema validate --help
check "no arguments" 2 '' -- "$BIN" schema validate
check "unknown subcommand" 2 '' -- "$BIN" schema lint "$TMP/schema.json"

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
