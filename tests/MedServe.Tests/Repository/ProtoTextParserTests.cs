using MedServe.Repository;

namespace MedServe.Tests.Repository;

public sealed class ProtoTextParserTests
{
    [Fact]
    public void Parse_ScalarsWithAndWithoutQuotes_KeepTextAndQuoting()
    {
        var node = ProtoTextParser.Parse("""
            name: "model"
            max_batch_size: 8
            kind: KIND_GPU
            ratio: -1.5e-3
            flag: true
            """);

        Assert.Equal(["name", "max_batch_size", "kind", "ratio", "flag"], node.Fields.Select(f => f.Key));
        Assert.Equal("model", node.One("name")!.Scalar);
        Assert.True(node.One("name")!.Quoted);
        Assert.Equal("8", node.One("max_batch_size")!.Scalar);
        Assert.False(node.One("max_batch_size")!.Quoted);
        Assert.Equal("KIND_GPU", node.One("kind")!.Scalar);
        Assert.Equal("-1.5e-3", node.One("ratio")!.Scalar);
        Assert.Equal("true", node.One("flag")!.Scalar);
    }

    [Fact]
    public void Parse_MessagesWithBracesAnglesAndOptionalColon()
    {
        var node = ProtoTextParser.Parse("a { x: 1 } b: { x: 2 } c < x: 3 > d: < x: 4 >");

        Assert.Equal(["1", "2", "3", "4"], new[] { "a", "b", "c", "d" }.Select(f => node.One(f)!.Message!.One("x")!.Scalar));
    }

    [Fact]
    public void Parse_ListsOfScalarsAndMessages_AreFlattenedByAll()
    {
        var node = ProtoTextParser.Parse("""
            dims: [ 3, 224, 224 ]
            input [ { name: "a" }, { name: "b" } ]
            input { name: "c" }
            empty: []
            """);

        Assert.Equal(["3", "224", "224"], node.All("dims").Select(v => v.Scalar));
        Assert.Equal(["a", "b", "c"], node.All("input").Select(v => v.Message!.One("name")!.Scalar));
        Assert.Empty(node.All("empty"));
        Assert.Empty(node.All("missing"));
        Assert.Null(node.One("missing"));
    }

    [Fact]
    public void One_RepeatedScalar_ReturnsTheLastValue()
    {
        var node = ProtoTextParser.Parse("max_batch_size: 1 max_batch_size: 4");

        Assert.Equal("4", node.One("max_batch_size")!.Scalar);
        Assert.Equal(2, node.All("max_batch_size").Count());
    }

    [Fact]
    public void Parse_AdjacentStringsConcatenate_AcrossLinesAndComments()
    {
        var node = ProtoTextParser.Parse("""
            name: "dense" 'net'
              # a comment between the parts
              "_v2"
            """);

        Assert.Equal("densenet_v2", node.One("name")!.Scalar);
    }

    [Fact]
    public void Parse_StringEscapes_AreDecoded()
    {
        var node = ProtoTextParser.Parse("""s: "a\"b\\c\n\t" t: 'it\'s'""");

        Assert.Equal("a\"b\\c\n\t", node.One("s")!.Scalar);
        Assert.Equal("it's", node.One("t")!.Scalar);
    }

    [Fact]
    public void Parse_CommentsAndSeparators_AreSkipped()
    {
        var node = ProtoTextParser.Parse("""
            # leading comment
            a: 1, b: 2; # trailing comment with "quotes" and { braces
            c { d: "# not a comment" }
            """);

        Assert.Equal("1", node.One("a")!.Scalar);
        Assert.Equal("2", node.One("b")!.Scalar);
        Assert.Equal("# not a comment", node.One("c")!.Message!.One("d")!.Scalar);
        Assert.Equal(3, node.Fields.Count);
    }

    [Fact]
    public void Parse_EmptyText_GivesAnEmptyNode()
    {
        Assert.Empty(ProtoTextParser.Parse("  # only a comment\n").Fields);
    }

    [Theory]
    [InlineData("name: \"a\"\nmax_batch_size 8", 2, 16, "expected ':' or '{' after field 'max_batch_size'")]
    [InlineData("name: \"a\"\n\ninput {\n  name: \"x\"\n", 5, 1, "expected '}' before the end of the file")]
    [InlineData("a: 1\nname: \"open\nb: 2", 2, 12, "a string is not closed")]
    [InlineData("dims: [1, 2\n  3]", 2, 3, "expected ',' or ']' in the list of 'dims'")]
    [InlineData("a: 1\n  : 2", 2, 3, "expected a field name")]
    [InlineData("a:\n  }", 2, 3, "expected a value for 'a'")]
    [InlineData("a { b: 1 }\n}", 2, 1, "expected a field name")]
    public void Parse_SyntaxError_ReportsSourceLineAndColumn(string text, int line, int column, string message)
    {
        var error = Assert.Throws<ModelConfigException>(() => ProtoTextParser.Parse(text, "m/config.pbtxt"));

        Assert.Contains($"m/config.pbtxt line {line}, column {column}:", error.Message);
        Assert.Contains(message, error.Message);
    }
}
