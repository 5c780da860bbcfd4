-- bench/load.lua — the wrk script behind bench/load: sends one request (a
-- POST or a GET) again and again on every connection, checks each answer,
-- and prints the summary as one `key=value` line for scripts.
--
-- Environment (set by bench/load): SB_LOAD_METHOD (POST or GET),
-- SB_LOAD_BODY (the POST's body),
-- SB_LOAD_HEADERS ("Name: value" lines), SB_LOAD_EXPECT (text an OK answer
-- contains; empty: any 2xx), SB_LOAD_REJECT (text an OK answer never
-- contains, e.g. an error result's "isError":true; empty: none),
-- SB_LOAD_CONNECTIONS (for the report), SB_LOAD_TOKENS_FILE (optional: one
-- bearer token a line; the requests then carry them in turn, each its own
-- `Authorization: Bearer` header, all made before the run starts).
-- An answer is an error unless its status is 2xx, its body contains
-- SB_LOAD_EXPECT and not SB_LOAD_REJECT; socket errors and timeouts count too.

local expect = os.getenv("SB_LOAD_EXPECT") or ""
local reject = os.getenv("SB_LOAD_REJECT") or ""
local threads = {}

wrk.method = os.getenv("SB_LOAD_METHOD") or "POST"
if wrk.method == "POST" then wrk.body = os.getenv("SB_LOAD_BODY") or "" end
for line in (os.getenv("SB_LOAD_HEADERS") or ""):gmatch("[^\n]+") do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
end

-- With a tokens file, one request per token, made in init(); request()
-- hands them out in turn (wrk calls it only when it is defined).
local tokens_file = os.getenv("SB_LOAD_TOKENS_FILE") or ""
if tokens_file ~= "" then
    function request()
        next_request = next_request % #requests + 1
        return requests[next_request]
    end
end

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    bad = 0
    first = nil
    if tokens_file ~= "" then
        requests, next_request = {}, 0
        for token in io.lines(tokens_file) do
            local headers = {}
            for name, value in pairs(wrk.headers) do headers[name] = value end
            headers["Authorization"] = "Bearer " .. token
            table.insert(requests, wrk.format(nil, nil, headers))
        end
        assert(#requests > 0, "no token in " .. tokens_file)
    end
end

function response(status, headers, body)
    if status < 200 or status > 299
       or (expect ~= "" and not string.find(body, expect, 1, true))
       or (reject ~= "" and string.find(body, reject, 1, true)) then
        bad = bad + 1
        if not first then first = status .. " " .. string.sub(body, 1, 200) end
    end
end

function done(summary, latency, requests)
    local bad_total, first_bad = 0, nil
    for _, thread in ipairs(threads) do
        bad_total = bad_total + thread:get("bad")
        first_bad = first_bad or thread:get("first")
    end
    local e = summary.errors
    local errors = bad_total + e.connect + e.read + e.write + e.timeout
    local seconds = summary.duration / 1e6
    if first_bad then io.stderr:write("first error: " .. first_bad .. "\n") end
    io.write(string.format(
        "connections=%s duration_s=%.2f requests=%d errors=%d rps=%.1f " ..
        "p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f\n",
        os.getenv("SB_LOAD_CONNECTIONS") or "?", seconds, summary.requests, errors,
        summary.requests / seconds, latency:percentile(50) / 1000,
        latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
