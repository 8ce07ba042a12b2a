import ArgumentParser

@main
struct EmotionTapCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emotiontap",
        abstract: "Listens to phone calls over RTP and tells the switch how each leg sounds.",
        version: "0.1.0",
        subcommands: [
            ServeCommand.self, SendCommand.self, EventsCommand.self, LoadgenCommand.self, AnalyzeCommand.self,
            FeaturesCommand.self, TrainCommand.self, EvalCommand.self, ExportCommand.self, ReportCommand.self,
            TopCommand.self, TuneCommand.self,
        ]
    )
}
