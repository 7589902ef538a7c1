-- Shared by the scenario scripts of `python -m scripts.bench_wrk` (loaded with dofile).
--
-- Each scenario defines `build(args)` returning the list of raw HTTP requests its thread
-- rotates through (made with wrk.format in init, so request() is a table lookup).
-- Arguments after `--` on the wrk command line: <threads> [<data file>].
--
-- Every response is checked: anything but 2xx counts as an error (wrk's own counter only
-- sees socket errors and statuses > 399). done() prints one line, `WRKJSON {...}`, with
-- the totals, latency percentiles (µs), statuses and how many requests were distinct.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

-- Lines of a tab-separated data file, as lists of fields.
function read_rows(path)
   local rows = {}
   for line in io.lines(path) do
      if #line > 0 then
         local fields = {}
         for field in (line .. "\t"):gmatch("([^\t]*)\t") do
            table.insert(fields, field)
         end
         table.insert(rows, fields)
      end
   end
   return rows
end

-- This thread's share of a list: items id, id + n, id + 2n, ... (ids from 1).
function my_share(items, nthreads)
   local mine = {}
   for i = id, #items, nthreads do
      table.insert(mine, items[i])
   end
   return mine
end

function urlencode(text)
   return (text:gsub("[^%w%-_%.~]", function(c)
      return string.format("%%%02X", string.byte(c))
   end))
end

function init(args)
   nthreads = tonumber(args[1]) or 1
   requests_list = build(args)
   if #requests_list == 0 then
      error("thread " .. id .. ": nothing to send")
   end
   generated = 0    -- request() calls (one is a probe by wrk before the run, never sent)
   distinct = #requests_list
   responses = 0
   non2xx = 0
   statuses = {}
end

function request()
   generated = generated + 1
   return requests_list[(generated - 1) % distinct + 1]
end

function response(status, headers, body)
   responses = responses + 1
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
   local key = tostring(status)
   statuses[key] = (statuses[key] or 0) + 1
end

local function json_value(value)
   if type(value) == "table" then
      local parts = {}
      for k, v in pairs(value) do
         table.insert(parts, string.format("%q:%s", tostring(k), json_value(v)))
      end
      return "{" .. table.concat(parts, ",") .. "}"
   elseif type(value) == "string" then
      return string.format("%q", value)
   end
   return string.format("%.17g", value)
end

function done(summary, latency, requests)
   local result = {
      duration_us = summary.duration,
      requests = summary.requests,
      bytes = summary.bytes,
      errors = summary.errors,
      latency_us = {
         p50 = latency:percentile(50),
         p90 = latency:percentile(90),
         p99 = latency:percentile(99),
         max = latency.max,
         mean = latency.mean,
      },
      responses = 0,
      non2xx = 0,
      generated = 0,
      distinct_sent = 0,
      statuses = {},
   }
   for _, thread in ipairs(threads) do
      local sent = thread:get("generated") or 0
      if thread:get("id") == 1 then
         sent = math.max(0, sent - 1)  -- wrk's probe call on the first thread
      end
      result.responses = result.responses + (thread:get("responses") or 0)
      result.non2xx = result.non2xx + (thread:get("non2xx") or 0)
      result.generated = result.generated + sent
      result.distinct_sent = result.distinct_sent + math.min(sent, thread:get("distinct") or 0)
      for status, count in pairs(thread:get("statuses") or {}) do
         result.statuses[status] = (result.statuses[status] or 0) + count
      end
   end
   io.write("WRKJSON " .. json_value(result) .. "\n")
end
