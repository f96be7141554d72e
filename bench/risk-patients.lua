-- bench/risk.lua's request, naming a patient: one of 10,000, in turn, so an experiment routes by patient.
local vals = {}
for i = 1, 30 do vals[i] = string.format("%.4f", (i % 7) * 0.1 - 0.3) end
local data = table.concat(vals, ",")
local token = os.getenv("AUTH_TOKEN")
local n = 0
request = function()
  n = n + 1
  local headers = { ["Content-Type"] = "application/json" }
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
  local body = '{"parameters":{"patient_id":"P' .. (n % 10000) .. '"},"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","data":[' .. data .. ']}]}'
  return wrk.format("POST", "/v2/models/risk/infer", headers, body)
end

done = function(summary, latency, requests)
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("p%d: %.3f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("errors: connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
