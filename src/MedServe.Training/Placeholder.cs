namespace MedServe.Training; internal static class Placeholder {}
