-- From shared/bench/fastapi-baseline/post.lua (the FastAPI peer's load script), unchanged, so both servers get the same request.
-- wrk -s post.lua URL : POSTs one Open Inference Protocol v2 JSON request (FP32 [1,30]) to
-- /v2/models/risk/infer, and prints p50/p90/p99 and the error counts at the end.
local vals = {}
for i = 1, 30 do vals[i] = string.format("%.4f", (i % 7) * 0.1 - 0.3) end
wrk.method = "POST"
wrk.path = os.getenv("INFER_PATH") or "/v2/models/risk/infer"
wrk.headers["Content-Type"] = "application/json"
local token = os.getenv("AUTH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
wrk.body = '{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":['
  .. table.concat(vals, ",") .. ']}]}'

done = function(summary, latency, requests)
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("p%d: %.3f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("errors: connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
