-- wrk script: keep-alive at an offered load both servers can meet. Each connection waits
-- `ms` milliseconds after a response before sending its next request (wrk's delay()), so
-- the requests arrive at the same pace whichever server answers them, and its wake-ups
-- (`epoll_wait` calls) per request compare the servers rather than their speeds.
-- Usage: wrk -s benches/http/paced.lua URL -- MS (default 2).

local ms = 2

init = function(args)
  if args[1] then
    ms = tonumber(args[1])
  end
end

delay = function()
  return ms
end
