-- wrk -s resnet18.lua URL : POSTs one 224x224 image (FP32 [1,3,224,224], binary tensor extension,
-- the way tritonclient.http sends it) to resnet18 and asks for the embedding in binary.
local n = 3 * 224 * 224
local header = string.format('{"inputs":[{"name":"image","shape":[1,3,224,224],"datatype":"FP32","parameters":{"binary_data_size":%d}}],"outputs":[{"name":"embedding","parameters":{"binary_data":true}}]}', n * 4)
-- 0x3F000000 is 0.5f little-endian: a flat grey image.
local pixels = string.rep("\0\0\0\63", n)
wrk.method = "POST"
wrk.path = "/v2/models/resnet18/infer"
wrk.headers["Inference-Header-Content-Length"] = tostring(#header)
-- MedServe needs a key (the admin key from <data-dir>/admin.key, or any key with the infer scope).
local token = os.getenv("AUTH_TOKEN")
if token and token ~= "" then wrk.headers["Authorization"] = "Bearer " .. token end
wrk.body = header .. pixels

done = function(summary, latency, requests)
  for _, p in ipairs({50, 90, 99}) do
    io.write(string.format("p%d: %.3f ms\n", p, latency:percentile(p) / 1000))
  end
  io.write(string.format("errors: connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
