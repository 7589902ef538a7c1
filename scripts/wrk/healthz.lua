-- GET /healthz: the app's cheapest path (middlewares, no database, no Redis).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function build(args)
   return { wrk.format("GET", "/healthz", { ["Accept"] = "application/json" }) }
end
