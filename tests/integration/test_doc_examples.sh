#!/usr/bin/env bash
# The Lua examples in README.md and docs/*.md run: a block that is a whole
# plugin (it starts with "return {") passes `agentcore plugin check`; any
# other block is a hook body, run through `agentcore plugin run` inside
# onAgentQuery, where it may use `res` (an HTTP answer whose body is "{}")
# and `body` (a string). A block deliberately partial is preceded by the
# line "<!-- example: partial -->" and is skipped, by name.
set -u
BIN="${AC_BINARY:?AC_BINARY must point at the agentcore binary}"
SRC="${AC_SOURCE_DIR:?}"
export AGENTCORE_LOG_LEVEL=error AGENTCORE_HOOK_TIMEOUT_MS=2000
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 pass=0 skipped=0
for doc in "$SRC"/README.md "$SRC"/docs/*.md; do
  [ -e "$doc" ] || continue
  # one file per block: N.lua, plus N.partial when marked so
  rm -f "$tmp"/block-*
  awk -v dir="$tmp" '
    /^<!-- example: partial -->/ { partial = 1; next }
    /^```lua/ { n++; f = 1; out = sprintf("%s/block-%03d.lua", dir, n)
                if (partial) { print "" > sprintf("%s/block-%03d.partial", dir, n) }
                partial = 0; printf "" > out; next }
    /^```/ { if (f) { f = 0; close(out) } next }
    f { print >> out }
    { if (!/^[[:space:]]*$/) partial = partial && /^<!--/ }
  ' "$doc"
  for block in "$tmp"/block-*.lua; do
    [ -e "$block" ] || continue
    name="$(basename "$doc"):$(basename "$block" .lua | sed 's/block-0*//')"
    if [ -e "${block%.lua}.partial" ]; then skipped=$((skipped + 1)); continue; fi
    if grep -q '^return {' "$block"; then
      out=$("$BIN" plugin check "$block" 2>&1); rc=$?
    else
      { echo 'return { id = "doc-example", capabilities = { "agent_query" },'
        echo '  onAgentQuery = function(query, context)'
        echo '    local res, body = { status = 200, headers = {}, body = "{}" }, "payload"'
        cat "$block"
        echo '    return {}'
        echo '  end }'; } > "$tmp/hook.lua"
      out=$("$BIN" plugin run "$tmp/hook.lua" --hook onAgentQuery --event '{"text":"x"}' \
            --config '{"apiKey":"k-123456","secret":"s-123456"}' 2>&1); rc=$?
    fi
    if [ "$rc" = 0 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $name: $out"; fi
  done
done
echo "$pass examples ran, $skipped marked partial, $fail failed"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]
