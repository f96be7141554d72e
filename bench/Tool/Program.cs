// MedServe.Bench: the peers and limits that bench/run.sh measures MedServe against.
//   inproc <repo> <seconds>            ONNX Runtime called directly: risk and resnet18 at several batch sizes
//   hold <repo>                        loads the sample models' sessions as MedServe does, prints resident memory
//   bare <port>                        a bare Kestrel answering POST /v2/models/risk/infer with a fixed v2 response
//   grpc <address> <model> <conns> <seconds>   closed-loop gRPC ModelInfer load on risk or resnet18 (Grpc.Net.Client)
//   grpc-body <model> <file>           writes one framed ModelInfer request body, for h2load
//   percentiles <h2load log>           p50 and p99 from h2load's per-request log
//   journal <folder> <appenders> <seconds> <rounds>   durable records/s: the journal against the SQLite audit store
//   record-cost <folder> <count>      microseconds per step of journaling one risk inference (payload, encryption, record, projection)
//   outcomes <url> <key> <predictions> <batch>   outcomes/s joined by request id and by patient (bench/outcomes.sh)
//   soak <url> <key> <pid> <rate> <seconds>   open-loop risk load at a fixed rate; p50, p99, errors and the server's RSS every 10 s (bench/soak.sh)
//   stall <url> <key> <conns> <declared> <initial> <seconds>   connections declaring a large body and stalling (bench/memory-burst.sh)
//   bomb <url> <key> <conns> <decoded>  concurrent gzip bombs of <decoded> zero bytes (bench/memory-burst.sh)
using MedServe.Bench;

return args.Length == 0 ? Usage() : args[0] switch
{
    "inproc" => InProcess.Run(args[1], double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture)),
    "hold" => SessionHolder.Run(args[1]),
    "bare" => await BareKestrel.RunAsync(int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture)),
    "grpc" => await GrpcLoad.RunAsync(args[1], args[2], int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture), double.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture)),
    "grpc-body" => GrpcLoad.WriteBody(args[1], args[2]),
    "percentiles" => GrpcLoad.Percentiles(args[1]),
    "journal" => await JournalLoad.RunAsync(args[1], int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture), double.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture), int.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture)),
    "record-cost" => await RecordCost.RunAsync(args[1], Int(args[2])),
    "outcomes" => await OutcomeLoad.RunAsync(new Uri(args[1]), args[2], Int(args[3]), Int(args[4])),
    "soak" => await Soak.RunAsync(new Uri(args[1]), args[2], Int(args[3]), double.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture), double.Parse(args[5], System.Globalization.CultureInfo.InvariantCulture)),
    "stall" => await MemoryBurst.StallAsync(new Uri(args[1]), args[2], Int(args[3]), long.Parse(args[4], System.Globalization.CultureInfo.InvariantCulture), Int(args[5]), double.Parse(args[6], System.Globalization.CultureInfo.InvariantCulture)),
    "bomb" => await MemoryBurst.BombAsync(new Uri(args[1]), args[2], Int(args[3]), Int(args[4])),
    _ => Usage(),
};

static int Int(string text) => int.Parse(text, System.Globalization.CultureInfo.InvariantCulture);

static int Usage()
{
    Console.Error.WriteLine("usage: MedServe.Bench inproc|hold|bare|grpc|grpc-body|percentiles|stall|bomb ...");
    return 2;
}
