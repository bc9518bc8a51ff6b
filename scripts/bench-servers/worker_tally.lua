-- worker_tally.lua - wrk script: counts the answers per worker.
--
--   wrk -s worker_tally.lua -c64 -H 'Connection: close' http://127.0.0.1:P/
--
-- Every 200 answer is counted under its X-Worker header (the bench's
-- servers, C and Go, name their worker there), one without it under "?";
-- other statuses under "status <code>".  After wrk's own summary, one line
-- per key:
--
--   tally <key> <answers>
--
-- Each wrk thread has its own Lua state: done() runs in the main one and
-- gathers the threads' tables with thread:get (which copies them).

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   tally = {}
end

function response(status, headers, body)
   local key
   if status == 200 then
      key = headers["X-Worker"] or headers["x-worker"] or "?"
   else
      key = "status " .. status
   end
   tally[key] = (tally[key] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      for key, n in pairs(thread:get("tally") or {}) do
         total[key] = (total[key] or 0) + n
      end
   end
   for key, n in pairs(total) do
      io.write(string.format("tally %s %d\n", key, n))
   end
end
