-- POST /api/v1/quizzes/{quiz_id}/submit: prepared quizzes (token, path, answers body a line),
-- each submitted once. When a thread's share runs out it starts over; those requests are
-- replays (the idempotent path) and done() reports how many requests were distinct.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function build(args)
   local out = {}
   for _, row in ipairs(my_share(read_rows(args[2]), nthreads)) do
      table.insert(out, wrk.format("POST", row[2], {
         ["Authorization"] = "Bearer " .. row[1],
         ["Content-Type"] = "application/json",
      }, row[3]))
   end
   return out
end
