-- GET /api/v1/articles?q=... (public), rotating Chinese queries, URL-encoded here.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "common.lua")

local QUERIES = {
   "高血压", "电信网络诈骗", "测土配方施肥", "垃圾分类", "人工智能", "食品安全",
   "用电安全", "农药", "验证码", "碳中和", "疫苗", "地震", "糖尿病", "北斗",
   "光伏", "防溺水",
}

function build(args)
   local out = {}
   -- Threads start at different queries so they don't march in step.
   for i = 0, #QUERIES - 1 do
      local q = QUERIES[(i + id - 1) % #QUERIES + 1]
      table.insert(out, wrk.format("GET", "/api/v1/articles?q=" .. urlencode(q), {
         ["Accept"] = "application/json",
      }))
   end
   return out
end
