-- webhooks.lua — built-in approval_hook/document_hook plugin: POSTs each
-- event as JSON to config.url, signed when a secret is configured.
--
-- Body (exact key order, data as the host sent it):
--   {"event":"approval.created","approvalId":...,"namespaceId":...,
--    "occurredAt":...,"data":{...}}
--   {"event":"document.ready","documentId":...,"namespaceId":...,
--    "occurredAt":...,"data":{...}}
-- Headers: content-type: application/json, webhook-id ("msg_" .. event id:
-- the same on every retry of one delivery, so receivers can dedupe) and
-- webhook-timestamp (unix seconds of this attempt) always; with a secret
-- also x-agentcore-signature: sha256=<hex HMAC-SHA256(secret, body)> and the
-- Standard Webhooks webhook-signature: v1,<base64 HMAC-SHA256(key,
-- id.timestamp.body)>, where key is the secret's bytes, or for a
-- "whsec_<base64>" secret the decoded base64 part. Both sign the exact bytes
-- sent. config.headers are added, except the names above, which the plugin
-- owns.
--
-- Outcome: 2xx ok; 408, 429, 5xx, timeouts, transport errors and the rate
-- limit -> context.retry (honouring Retry-After in seconds or as an HTTP
-- date, capped at one hour); any other status (3xx, other 4xx) and an
-- address the engine refuses -> error, not retried.

local EVENTS = { "approval.created", "document.ready" }
local DEFAULT_TIMEOUT_MS = 10000
local TIME_RESERVE_MS = 250    -- a timed-out request still leaves time to ask for a retry
local RETRY_AFTER_MAX_S = 3600
local OWN_HEADERS = {
  ["content-type"] = true, ["webhook-id"] = true, ["webhook-timestamp"] = true,
  ["webhook-signature"] = true, ["x-agentcore-signature"] = true,
}
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
                 Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- ---- signing ----------------------------------------------------------------

local function signing_key(crypto, secret)
  if secret:sub(1, 6) == "whsec_" then
    local key, err = crypto.base64_decode(secret:sub(7))
    if not key then return nil, "config.secret: the part after whsec_ is not base64 (" .. err .. ")" end
    return key
  end
  return secret
end

-- The signature headers for one attempt; exported (signatureHeaders) so
-- receivers and tests can check the signing on known vectors.
local function signature_headers(crypto, secret, id, timestamp, body)
  local key, err = signing_key(crypto, secret)
  if not key then return nil, err end
  local signed = id .. "." .. timestamp .. "." .. body
  return {
    ["x-agentcore-signature"] = "sha256=" .. crypto.hex(crypto.hmac_sha256(secret, body)),
    ["webhook-signature"] = "v1," .. crypto.base64(crypto.hmac_sha256(key, signed)),
  }
end

-- ---- Retry-After ------------------------------------------------------------

-- Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
-- days_from_civil): os.time would read the fields as local time.
local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- Seconds to wait from a Retry-After value: delta-seconds or an IMF-fixdate
-- ("Sun, 06 Nov 1994 08:49:37 GMT"), clamped to 0..RETRY_AFTER_MAX_S; nil
-- when absent or unreadable (the engine's backoff schedule decides).
local function retry_after(value, now)
  if type(value) ~= "string" then return nil end
  value = value:match("^%s*(.-)%s*$")
  local secs
  if value:find("^%d+$") then
    secs = tonumber(value)
  else
    local d, mon, y, hh, mm, ss =
      value:match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
    if not d or not MONTHS[mon] then return nil end
    local at = days_from_civil(tonumber(y), MONTHS[mon], tonumber(d)) * 86400
               + tonumber(hh) * 3600 + tonumber(mm) * 60 + tonumber(ss)
    secs = at - now
  end
  if secs < 0 then secs = 0 end
  if secs > RETRY_AFTER_MAX_S then secs = RETRY_AFTER_MAX_S end
  return math.floor(secs)
end

-- ---- delivery ---------------------------------------------------------------

local function payload(json, event, event_type, id_field, id_value)
  local data = event.data
  if type(data) ~= "table" then data = {} end
  local function str(v)
    if v == nil then return "null" end
    return json.encode(v)
  end
  return table.concat({
    '{"event":', json.encode(event_type),
    ',"', id_field, '":', str(id_value),
    ',"namespaceId":', str(event.namespaceId),
    ',"occurredAt":', str(event.occurredAt),
    ',"data":', json.encode(data), "}",
  })
end

local function wanted(events, event_type)
  if events == nil then return true end
  for _, e in ipairs(events) do
    if e == event_type then return true end
  end
  return false
end

local function deliver(event, context, event_type, id_field, id_value)
  local cfg = context.config
  if not wanted(cfg.events, event_type) then
    return { delivered = false, skipped = event_type .. " is not in config.events" }
  end
  local crypto = context.crypto
  local body = payload(context.json, event, event_type, id_field, id_value)
  local id
  if type(event.id) == "string" and event.id ~= "" then
    id = "msg_" .. event.id
  else -- still stable across retries: the body does not change
    id = "msg_" .. crypto.hex(crypto.sha256(body)):sub(1, 32)
  end
  local timestamp = tostring(os.time())

  local headers = {}
  if cfg.headers then
    for name, value in pairs(cfg.headers) do
      if not OWN_HEADERS[name:lower()] then headers[name] = value end
    end
  end
  headers["content-type"] = "application/json"
  headers["webhook-id"] = id
  headers["webhook-timestamp"] = timestamp
  if cfg.secret then
    local sig, err = signature_headers(crypto, cfg.secret, id, timestamp, body)
    if not sig then error(err, 0) end
    for name, value in pairs(sig) do headers[name] = value end
  end

  local left = context.deadline() - TIME_RESERVE_MS
  if left < 50 then context.retry("no time left in this call to deliver the webhook") end
  local res, err = context.http.post(cfg.url, body, {
    headers = headers,
    timeoutMs = math.min(cfg.timeoutMs or DEFAULT_TIMEOUT_MS, left),
  })
  if not res then
    if err:find("^denied") then error("webhook delivery refused: " .. err, 0) end
    context.retry("webhook delivery failed: " .. err)
  end
  local status = res.status
  if status >= 200 and status <= 299 then
    return { delivered = true, status = status, webhookId = id }
  end
  if status == 408 or status == 429 or (status >= 500 and status <= 599) then
    context.retry("webhook receiver answered HTTP " .. status,
                  retry_after(res.headers["retry-after"], os.time()))
  end
  error("webhook receiver answered HTTP " .. status .. " (not retried)", 0)
end

-- ---- plugin -----------------------------------------------------------------

return {
  id = "webhooks",
  name = "Webhooks",
  category = "automation",
  version = "1.0.0",
  configSchema = {
    type = "object",
    properties = {
      url = { type = "string", format = "uri", pattern = "^[Hh][Tt][Tt][Pp][Ss]?://",
              description = "http(s) URL the events are POSTed to" },
      secret = { type = "string", writeOnly = true, minLength = 1,
                 description = "signing secret (raw, or whsec_<base64>)" },
      events = { type = "array", items = { type = "string", enum = EVENTS }, uniqueItems = true,
                 description = "event types to send (default: all)" },
      headers = { type = "object", additionalProperties = { type = "string" },
                  maxProperties = 50, description = "extra request headers" },
      timeoutMs = { type = "integer", minimum = 100, maximum = 30000,
                    description = "request timeout (default 10000, never past the hook's deadline)" },
    },
    required = { "url" },
    additionalProperties = false,
  },
  capabilities = { PluginCapability.ApprovalHook, PluginCapability.DocumentHook },

  onApprovalCreated = function(event, context)
    return deliver(event, context, "approval.created", "approvalId", event.approvalId)
  end,
  onDocumentReady = function(event, context)
    return deliver(event, context, "document.ready", "documentId", event.documentId)
  end,

  signatureHeaders = signature_headers,
}
