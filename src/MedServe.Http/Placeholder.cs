namespace MedServe.Http; internal static class Placeholder {}
