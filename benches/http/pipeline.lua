-- wrk script: HTTP/1.1 pipelining. Each connection sends `depth` requests back to back in
-- one write, then waits for all `depth` responses before sending the next batch; wrk
-- counts every response. Usage: wrk -s benches/http/pipeline.lua URL -- DEPTH (default 16).

local depth = 16
local batch

init = function(args)
  if args[1] then
    depth = tonumber(args[1])
  end
  local requests = {}
  for i = 1, depth do
    -- The method, path and headers of the URL wrk was given (GET, with Host).
    requests[i] = wrk.format()
  end
  batch = table.concat(requests)
end

request = function()
  return batch
end
