-- wrk script for tests/bench/peer.sh: POST one MCP JSON-RPC request per HTTP request.
-- The body is read from the file named by WRK_BODY_FILE (one JSON-RPC request holding "id":1,
-- e.g. lua/tools_list.json or lua/list_documents.json). With WRK_UNIQUE_IDS=1 every request gets
-- its own id (thread * 1e9 + counter): servers track a session's in-flight requests by id, and
-- concurrent requests sharing one are not served (signbridge answers -32600 "a request with this id
-- is already in progress" with HTTP 200; the TypeScript SDK routes the answers to the wrong
-- connection and leaves others hanging). Without it the body is sent as is, which wrk prepares once
-- (cheaper for the load generator; right for tools/list, which signbridge answers inline, and for
-- one connection, where nothing is concurrent).
-- The session headers (X-API-Key, Mcp-Session-Id, MCP-Protocol-Version) come from the wrk command
-- line (-H ...).
local f = assert(io.open(assert(os.getenv("WRK_BODY_FILE"), "WRK_BODY_FILE not set"), "rb"))
local template = f:read("*a")
f:close()
local i, j = template:find('"id":1', 1, true)
assert(i, "WRK_BODY_FILE must hold \"id\":1")
local head, tail = template:sub(1, i + 4), template:sub(j + 1)

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"

if os.getenv("WRK_UNIQUE_IDS") ~= "1" then
  wrk.body = template
  return
end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, head .. string.format("%d", tid * 1000000000 + n) .. tail)
end
