using System.Buffers.Binary;
using System.Net;
using System.Text;
using MedServe.IntegrationTests.Support;

namespace MedServe.IntegrationTests;

/// <summary>Every datatype through ONNX Runtime and back (an Identity model), in JSON and in binary.</summary>
[Collection(ServerCollection.Name)]
public sealed class DatatypeRoundTripTests(ServerFixture server)
{
    public static TheoryData<string, string> JsonCases => new()
    {
        { "BOOL", "[[true,false,true],[false,false,true]]" },
        { "UINT8", "[0,128,255,1,2,3]" },
        { "UINT16", "[0,65535,7,1,2,3]" },
        { "UINT32", "[0,4294967295,7,1,2,3]" },
        { "UINT64", "[0,18446744073709551615,7,1,2,3]" },
        { "INT8", "[-128,127,0,1,-2,3]" },
        { "INT16", "[-32768,32767,0,1,-2,3]" },
        { "INT32", "[-2147483648,2147483647,0,1,-2,3]" },
        { "INT64", "[-9223372036854775808,9223372036854775807,0,1,-2,3]" },
        { "FP16", "[0.5,-2,65504,0.25,1,-0.125]" },
        { "FP32", "[0.1,-2.5,3.4028235E+38,1E-07,1,-0.125]" },
        { "FP64", "[0.1,-2.5,1.7976931348623157E+308,5E-324,1,-0.125]" },
        { "BYTES", "[\"a\",\"\",\"é ü\",\"line\\nbreak\",\"x\",\"12345\"]" },
    };

    [Theory]
    [MemberData(nameof(JsonCases))]
    public async Task Json_data_round_trips(string datatype, string data)
    {
        using var response = await server.PostJsonAsync($"/v2/models/{IdentityModel.ModelName(datatype)}/infer",
            $$$"""{"inputs":[{"name":"in","shape":[2,3],"datatype":"{{{datatype}}}","data":{{{data}}}}],"outputs":[{"name":"out"}]}""");
        var json = await ServerFixture.JsonAsync(response);

        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        var output = json.GetProperty("outputs")[0];
        Assert.Equal(datatype, output.GetProperty("datatype").GetString());
        Assert.Equal([2L, 3L], output.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()));
        var sent = System.Text.Json.JsonDocument.Parse(data).RootElement;
        var flat = sent.EnumerateArray().SelectMany(e => e.ValueKind == System.Text.Json.JsonValueKind.Array ? e.EnumerateArray() : new[] { e }.AsEnumerable()).ToList();
        var received = output.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(flat.Count, received.Count);
        for (var i = 0; i < flat.Count; i++)
        {
            if (datatype is "FP32" or "FP64" or "FP16")
            {
                Assert.Equal(flat[i].GetDouble(), received[i].GetDouble(), datatype == "FP32" ? 1e-6 * Math.Abs(flat[i].GetDouble()) : 0);
            }
            else
            {
                Assert.Equal(flat[i].ToString(), received[i].ToString());
            }
        }
    }

    public static TheoryData<string, int> BinaryCases => new()
    {
        { "BOOL", 1 }, { "UINT8", 1 }, { "UINT16", 2 }, { "UINT32", 4 }, { "UINT64", 8 }, { "INT8", 1 }, { "INT16", 2 },
        { "INT32", 4 }, { "INT64", 8 }, { "FP16", 2 }, { "FP32", 4 }, { "FP64", 8 },
    };

    [Theory]
    [MemberData(nameof(BinaryCases))]
    public async Task Binary_data_round_trips_byte_for_byte(string datatype, int size)
    {
        var random = new Random(size * 31 + datatype.Length);
        var raw = new byte[6 * size];
        random.NextBytes(raw);
        if (datatype == "BOOL")
        {
            for (var i = 0; i < raw.Length; i++)
            {
                raw[i] &= 1;
            }
        }
        else if (datatype is "FP16" or "FP32" or "FP64")
        {
            // Finite values only, so the bytes survive any float handling unchanged.
            for (var i = 0; i < 6; i++)
            {
                var slot = raw.AsSpan(i * size, size);
                switch (size)
                {
                    case 2: BinaryPrimitives.WriteHalfLittleEndian(slot, (Half)(i * 1.5 - 3)); break;
                    case 4: BinaryPrimitives.WriteSingleLittleEndian(slot, (float)(random.NextDouble() * 1000 - 500)); break;
                    default: BinaryPrimitives.WriteDoubleLittleEndian(slot, random.NextDouble() * 1e6 - 5e5); break;
                }
            }
        }

        var header = $$$"""{"inputs":[{"name":"in","shape":[2,3],"datatype":"{{{datatype}}}","parameters":{"binary_data_size":{{{raw.Length}}}}}],"outputs":[{"name":"out","parameters":{"binary_data":true}}]}""";
        using var response = await server.PostBinaryAsync($"/v2/models/{IdentityModel.ModelName(datatype)}/infer", header, raw);
        var (json, binary) = await ServerFixture.SplitAsync(response);

        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        Assert.Equal(raw.Length, json.GetProperty("outputs")[0].GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.Equal(raw, binary);
    }

    [Fact]
    public async Task Binary_bytes_elements_are_length_prefixed_both_ways()
    {
        string[] elements = ["alpha", "", "βγ", "\u0001\u0002", "z", "0123456789"];
        var raw = elements.SelectMany(e =>
        {
            var utf8 = Encoding.UTF8.GetBytes(e);
            var prefix = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(prefix, utf8.Length);
            return prefix.Concat(utf8);
        }).ToArray();

        var header = $$$"""{"inputs":[{"name":"in","shape":[2,3],"datatype":"BYTES","parameters":{"binary_data_size":{{{raw.Length}}}}}],"outputs":[{"name":"out","parameters":{"binary_data":true}}]}""";
        using var response = await server.PostBinaryAsync("/v2/models/id-bytes/infer", header, raw);
        var (_, binary) = await ServerFixture.SplitAsync(response);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(raw, binary);
    }

    [Fact]
    public async Task Only_the_requested_outputs_come_back_in_the_order_asked()
    {
        using var response = await server.PostJsonAsync("/v2/models/id-int32/infer", """
            {"inputs":[{"name":"in","shape":[1,3],"datatype":"INT32","data":[1,2,3]}],
             "outputs":[{"name":"copy"},{"name":"out","parameters":{"binary_data":false}}]}
            """);
        var json = await ServerFixture.JsonAsync(response);

        Assert.True(response.StatusCode == HttpStatusCode.OK, json.ToString());
        var names = json.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()).ToList();
        Assert.Equal(["copy", "out"], names);

        using var single = await server.PostJsonAsync("/v2/models/id-int32/infer", """
            {"inputs":[{"name":"in","shape":[1,3],"datatype":"INT32","data":[1,2,3]}],"outputs":[{"name":"copy"}]}
            """);
        Assert.Equal(["copy"], (await ServerFixture.JsonAsync(single)).GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
    }
}
