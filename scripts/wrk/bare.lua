-- The bare aiohttp handler (scripts/baseline_server.py): the yardstick for the ratios.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

function build(args)
   return { wrk.format("GET", "/", { ["Accept"] = "application/json" }) }
end
