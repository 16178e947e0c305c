-- opendatabot.lua — built-in agent_query plugin: finds EDRPOU codes (the
-- 8-digit identifiers of Ukrainian legal entities) in a query, checks each
-- control digit and answers one `company` result per code.
--
-- Which numbers count: every run of exactly 8 ASCII digits that is not part
-- of a longer digit run and not glued to an ASCII letter or "_" ("14360570",
-- "код:14360570", "«14360570»" and "ЄДРПОУ14360570" count; "123456789",
-- "a14360570b" and "INV_14360570" do not). Repeats are reported once, in
-- order of appearance, at most 5 codes per query.
--
-- mode "mock" (default) answers deterministic made-up company data derived
-- from the code (the same code always gives the same company; data.mock is
-- true). mode "api" asks Opendatabot for each code with a valid control
-- digit: GET <baseUrl>/company/<code>?apiKey=<apiKey>, and maps the JSON
-- answer (the company object itself or under "data"). An upstream failure
-- never fails the hook: that code's result says the lookup failed, with the
-- reason in data.lookupError, and still carries the checksum verdict.

local MAX_RESULTS = 5
local DEFAULT_BASE_URL = "https://opendatabot.com/api/v3"
local TIME_RESERVE_MS = 300   -- left for building the answer after a request
local REQUEST_TIMEOUT_MS = 4000

-- ---- EDRPOU codes ---------------------------------------------------------

local function digits_of(code)
  local d = {}
  for i = 1, 8 do d[i] = code:byte(i) - 48 end
  return d
end

-- The official control digit: weights 1..7, or 7,1,2,...,6 for codes from
-- 30000000 to 60000000; a remainder of 10 is recomputed with every weight
-- raised by 2, and a second 10 counts as 0.
local function control_digit(code)
  local d = digits_of(code)
  local n = tonumber(code)
  local weights
  if n < 30000000 or n > 60000000 then
    weights = { 1, 2, 3, 4, 5, 6, 7 }
  else
    weights = { 7, 1, 2, 3, 4, 5, 6 }
  end
  local function remainder(add)
    local sum = 0
    for i = 1, 7 do sum = sum + d[i] * (weights[i] + add) end
    return sum % 11
  end
  local r = remainder(0)
  if r == 10 then
    r = remainder(2)
    if r == 10 then r = 0 end
  end
  return r
end

local function checksum_valid(code)
  return digits_of(code)[8] == control_digit(code)
end

-- An ASCII letter or "_" (what "[%a_]" matches), false for nil.
local function is_word_byte(b)
  return b ~= nil and (b == 95 or (b >= 65 and b <= 90) or (b >= 97 and b <= 122))
end

-- 1 if code is among the first n of codes (at most MAX_RESULTS: a scan is
-- cheaper than a set built on every query).
local function listed(codes, n, code)
  for i = 1, n do
    if codes[i] == code then return true end
  end
  return false
end

local function find_codes(text)
  local codes, n = {}, 0
  local from = 1
  while n < MAX_RESULTS do
    local s, e = string.find(text, "%d+", from)
    if not s then break end
    from = e + 1
    if e - s == 7 and not is_word_byte(string.byte(text, s - 1))
        and not is_word_byte(string.byte(text, e + 1)) then
      local run = string.sub(text, s, e)
      if not listed(codes, n, run) then
        n = n + 1
        codes[n] = run
      end
    end
  end
  return codes
end

-- ---- deterministic mock data ---------------------------------------------

local FORMS = { "ТОВ", "ПП", "ПрАТ", "АТ", "ФГ", "ТОВ", "ТОВ", "ПП" }
local WORDS = { "Дніпро", "Карпати", "Полісся", "Світанок", "Злагода", "Оберіг", "Вектор", "Поділля" }
local TRADES = { "Агро", "Трейд", "Буд", "Сервіс", "Логістик", "Фарм", "Енерго", "Текстиль" }
local CITIES = { "м. Київ", "м. Львів", "м. Одеса", "м. Харків", "м. Дніпро", "м. Вінниця",
                 "м. Полтава", "м. Чернігів" }
local STREETS = { "вул. Шевченка", "вул. Івана Франка", "просп. Незалежності", "вул. Грушевського",
                  "вул. Садова", "вул. Лесі Українки", "вул. Соборна", "вул. Героїв Майдану" }
local FIRST = { "Олена", "Андрій", "Ірина", "Тарас", "Наталія", "Богдан", "Оксана", "Микола" }
local LAST = { "Коваленко", "Шевчук", "Бондаренко", "Мельник", "Ткаченко", "Кравчук", "Олійник",
               "Лисенко" }
local ACTIVITIES = {
  { "62.01", "Комп'ютерне програмування" },
  { "46.90", "Неспеціалізована оптова торгівля" },
  { "41.20", "Будівництво житлових і нежитлових будівель" },
  { "01.11", "Вирощування зернових культур" },
  { "49.41", "Вантажний автомобільний транспорт" },
  { "70.22", "Консультування з питань комерційної діяльності й керування" },
}
local STATUSES = { -- weighted: most companies are active
  { "registered", "зареєстровано" }, { "registered", "зареєстровано" },
  { "registered", "зареєстровано" }, { "registered", "зареєстровано" },
  { "registered", "зареєстровано" }, { "registered", "зареєстровано" },
  { "terminating", "в стані припинення" }, { "terminated", "припинено" },
}

-- A small linear congruential generator seeded by the code: integer
-- arithmetic only, so every platform and run picks the same values.
local function generator(code)
  local state = tonumber(code) + 1
  return function(n)
    state = (state * 1103515245 + 12345) % 2147483648
    return (state // 65536) % n + 1
  end
end

local function mock_company(code)
  local pick = generator(code)
  local form = FORMS[pick(#FORMS)]
  local name = string.format('%s "%s %s"', form, WORDS[pick(#WORDS)], TRADES[pick(#TRADES)])
  local address = string.format("%s, %s, %d", CITIES[pick(#CITIES)], STREETS[pick(#STREETS)],
                                pick(120))
  local director = FIRST[pick(#FIRST)] .. " " .. LAST[pick(#LAST)]
  local activity = ACTIVITIES[pick(#ACTIVITIES)]
  local status = STATUSES[pick(#STATUSES)]
  local registered = string.format("%04d-%02d-%02d", 1991 + pick(33), pick(12), pick(28))
  return {
    name = name,
    address = address,
    director = director,
    status = status[1],
    statusText = status[2],
    kved = activity[1],
    activity = activity[2],
    registrationDate = registered,
    authorizedCapital = pick(1000) * 1000,
  }
end

-- ---- results --------------------------------------------------------------

local function source(code)
  return { name = "Opendatabot", url = "https://opendatabot.ua/c/" .. code }
end

local function invalid_result(code)
  return {
    type = "company",
    title = "EDRPOU " .. code .. ": invalid control digit",
    summary = string.format("The control digit should be %d: %s is not a valid EDRPOU code.",
                            control_digit(code), code),
    data = { edrpou = code, checksumValid = false, expectedControlDigit = control_digit(code) },
    source = source(code),
    confidence = 0.25,
  }
end

local function company_result(code, c, mock)
  local data = { edrpou = code, checksumValid = true, mock = mock }
  for k, v in pairs(c) do data[k] = v end
  local parts = { "EDRPOU " .. code }
  if c.statusText or c.status then parts[#parts + 1] = c.statusText or c.status end
  if c.address then parts[#parts + 1] = c.address end
  if c.director then parts[#parts + 1] = "director " .. c.director end
  local summary = table.concat(parts, "; ")
  if mock then summary = summary .. " (mock data)" end
  return {
    type = "company",
    title = c.name or ("EDRPOU " .. code),
    summary = summary,
    data = data,
    source = source(code),
    confidence = mock and 0.5 or 0.875,
  }
end

local function lookup_failed(code, why)
  return {
    type = "company",
    title = "EDRPOU " .. code,
    summary = "The control digit is valid, but the Opendatabot lookup failed (" .. why .. ").",
    data = { edrpou = code, checksumValid = true, mock = false, lookupError = why },
    source = source(code),
    confidence = 0.25,
  }
end

-- Mock results (and the verdict on an invalid code) depend on the code
-- alone, so each is built once per state (a state serves one namespace)
-- and handed out again; the engine only reads what a hook returns.
local MOCK_CACHE_MAX = 512
local mock_cache, mock_cached = {}, 0

local function mock_result(code)
  local r = mock_cache[code]
  if r then return r end
  if mock_cached >= MOCK_CACHE_MAX then mock_cache, mock_cached = {}, 0 end
  if checksum_valid(code) then
    r = company_result(code, mock_company(code), true)
  else
    r = invalid_result(code)
  end
  mock_cache[code] = r
  mock_cached = mock_cached + 1
  return r
end

-- ---- api mode ---------------------------------------------------------------

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(ch) return string.format("%%%02X", ch:byte()) end))
end

local function first_string(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if type(v) == "string" and v ~= "" then return v end
  end
  return nil
end

-- Maps an Opendatabot company document to the fields mock mode fills.
local function map_company(doc)
  local c = doc
  if type(doc.data) == "table" then c = doc.data end
  local location = c.location
  if type(location) == "table" then location = location.address end
  local activity = c.activities
  if type(activity) == "table" then activity = activity[1] end
  if type(activity) == "table" then activity = activity.name end
  return {
    name = first_string(c.full_name, c.name, c.short_name, c.fullName),
    shortName = first_string(c.short_name, c.shortName),
    address = first_string(location, c.address),
    director = first_string(c.ceo_name, c.director, c.head_name),
    status = first_string(c.status),
    registrationDate = first_string(c.registration_date, c.registrationDate),
    activity = first_string(activity, c.activity),
  }
end

local function api_result(code, context)
  local cfg = context.config
  local left = context.deadline() - TIME_RESERVE_MS
  if left < 100 then return lookup_failed(code, "timeout: no time left in this call") end
  local base = (cfg.baseUrl or DEFAULT_BASE_URL):gsub("/+$", "")
  local url = base .. "/company/" .. code
  if cfg.apiKey then url = url .. "?apiKey=" .. urlencode(cfg.apiKey) end
  local res, err = context.http.get(url, {
    headers = { accept = "application/json" },
    timeoutMs = math.min(left, REQUEST_TIMEOUT_MS),
  })
  if not res then return lookup_failed(code, err) end
  if res.status == 404 then
    return {
      type = "company",
      title = "EDRPOU " .. code .. ": not found",
      summary = "The control digit is valid, but Opendatabot has no company with this code.",
      data = { edrpou = code, checksumValid = true, mock = false, found = false },
      source = source(code),
      confidence = 0.75,
    }
  end
  if res.status < 200 or res.status > 299 then
    return lookup_failed(code, "HTTP " .. res.status)
  end
  local ok, doc = pcall(context.json.decode, res.body)
  if not ok or type(doc) ~= "table" then
    return lookup_failed(code, "the answer is not a JSON object")
  end
  return company_result(code, map_company(doc), false)
end

-- ---- plugin -----------------------------------------------------------------

return {
  id = "opendatabot",
  name = "Opendatabot",
  category = "enrichment",
  version = "1.0.0",
  configSchema = {
    type = "object",
    properties = {
      mode = { type = "string", enum = { "mock", "api" }, default = "mock",
               description = "mock: deterministic sample data; api: live Opendatabot lookups" },
      apiKey = { type = "string", writeOnly = true, minLength = 1,
                 description = "Opendatabot API key (api mode)" },
      baseUrl = { type = "string", format = "uri", default = DEFAULT_BASE_URL,
                  description = "Opendatabot API base URL (api mode)" },
    },
    additionalProperties = false,
  },
  capabilities = { PluginCapability.AgentQuery },

  onAgentQuery = function(query, context)
    if type(query.text) ~= "string" then return {} end
    local api = context.config.mode == "api"
    local results = find_codes(query.text) -- each code is replaced by its result
    for i, code in ipairs(results) do
      if not api then
        results[i] = mock_result(code)
      elseif checksum_valid(code) then
        results[i] = api_result(code, context)
      else
        results[i] = invalid_result(code)
      end
    end
    return results
  end,
}
