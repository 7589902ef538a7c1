-- POST /api/v1/quizzes {"mode": "practice"}, rotating residents' tokens (a file, one a line;
-- each thread takes its own share).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function build(args)
   local out = {}
   for _, row in ipairs(my_share(read_rows(args[2]), nthreads)) do
      table.insert(out, wrk.format("POST", "/api/v1/quizzes", {
         ["Authorization"] = "Bearer " .. row[1],
         ["Content-Type"] = "application/json",
      }, '{"mode":"practice"}'))
   end
   return out
end
