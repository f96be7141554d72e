-- wrk -s risk-binary.lua URL : the same risk request as risk.lua (FP32 [1,30], same values), sent
-- the way tritonclient.http sends it: binary tensor extension in, binary output asked back.
-- IEEE 754 single, little-endian (wrk's LuaJIT has no string.pack).
local function f32(x)
  if x == 0 then return "\0\0\0\0" end
  local sign = 0
  if x < 0 then sign = 1; x = -x end
  local m, e = math.frexp(x)
  local mantissa = math.floor((m * 2 - 1) * 2^23 + 0.5)
  local bits = sign * 2^31 + (e + 126) * 2^23 + mantissa
  local out = {}
  for i = 1, 4 do out[i] = string.char(bits % 256); bits = math.floor(bits / 256) end
  return table.concat(out)
end
local floats = {}
for i = 1, 30 do floats[i] = f32((i % 7) * 0.1 - 0.3) end
local header = '{"inputs":[{"name":"input","shape":[1,30],"datatype":"FP32","parameters":{"binary_data_size":120}}],"outputs":[{"name":"output","parameters":{"binary_data":true}}]}'
wrk.method = "POST"
wrk.path = "/v2/models/risk/infer"
wrk.headers["Inference-Header-Content-Length"] = tostring(#header)
-- MedServe needs a key (the admin key from <data-dir>/admin.key, or any key with the infer scope).
local token = os.getenv("AUTH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
wrk.body = header .. table.concat(floats)

done = function(summary, latency, requests)
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("p%d: %.3f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("errors: connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
