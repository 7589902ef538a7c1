-- GET /api/v1/leaderboards?scope=county&period=week, rotating residents' tokens.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function build(args)
   local out = {}
   for _, row in ipairs(my_share(read_rows(args[2]), nthreads)) do
      table.insert(out, wrk.format("GET", "/api/v1/leaderboards?scope=county&period=week", {
         ["Authorization"] = "Bearer " .. row[1],
         ["Accept"] = "application/json",
      }))
   end
   return out
end
