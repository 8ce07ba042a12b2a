import EmotionHistory
import Testing

@testable import EmotionReport

@Suite struct TextReportTests {
    @Test func tableLinesAllHaveTheSameWidthAndNumbersAlignRight() {
        var table = TextTable(columns: [.init(header: "NAME", alignment: .left), .init(header: "N", alignment: .right)])
        table.append(["a", "5"])
        table.append(["longer name", "1234"])
        table.append(["é▁", "-"])
        let lines = table.lines()
        #expect(lines.count == 5)
        #expect(Set(lines.map(\.count)).count == 1)
        #expect(lines[0] == "NAME            N")
        #expect(lines[1] == "-----------  ----")
        #expect(lines[2] == "a               5")
        #expect(lines[3] == "longer name  1234")
    }

    @Test func controlCharactersDoNotBreakTheTable() {
        var table = TextTable(columns: [.init(header: "ID", alignment: .left)])
        table.append(["a\nb\u{1B}[31m"])
        let lines = table.lines()
        #expect(lines.count == 3)
        #expect(!lines.joined().contains("\u{1B}"))
        #expect(Set(lines.map(\.count)).count == 1)
    }

    @Test func sparklineUsesTheBlockCharactersAndADotForNil() {
        #expect(Sparkline.render([0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1, nil]) == " ▁▂▃▄▅▆▇█·")
    }

    @Test func sparklineBucketsToAtMostSixtyColumns() {
        let values: [Double?] = (0..<150).map { $0 == 77 ? 1.0 : 0.0 }
        let line = Sparkline.render(values)
        #expect(line.count == 50)  // three windows per column
        #expect(line.filter { $0 == "█" }.count == 1)  // a one-window burst survives bucketing
        #expect(Sparkline.render(Array(repeating: nil, count: 61)).count == 31)
        #expect(Sparkline.render(Array(repeating: 0.5, count: 60)).count == 60)
    }

    @Test func callReportHasHeaderSummaryTableAndTimelines() throws {
        let text = ReportRenderer.render(Fixtures.call(), as: .text)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "Call         call-1")
        #expect(lines.contains("Escalations  1"))
        // The summary table: header, rule and one row per leg, all the same width.
        let header = try #require(lines.firstIndex { $0.hasPrefix("LEG ") })
        let table = Array(lines[header..<header + 4])
        #expect(Set(table.map(\.count)).count == 1)
        #expect(table[3].hasPrefix("leg-a "))
        #expect(table[2].contains(" 62 % "))
        #expect(table[2].contains(" 60.0 s "))
        #expect(table[3].contains(" - "))  // the agent leg has not ended: its figures are missing
        // The customer's sparkline: calm, rising, a gap, upset, calm again.
        #expect(lines.contains("  upset |▁▂·▆█▂|"))
        #expect(lines.contains("     8.0 s  calm -> upset"))
        #expect(lines.contains { $0.contains("10.0 s  after 4.0 s upset  2025-03-01T10:00:10Z") })
        #expect(text.hasSuffix("\n"))
    }

    @Test func agentReportHasSummaryLinesAndOneRowPerCall() throws {
        let text = ReportRenderer.render(Fixtures.agent(), as: .text)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.contains("Calls                2"))
        #expect(lines.contains("Ended calmer         0 %"))
        #expect(lines.contains("Escalation rate      50 %"))
        #expect(lines.contains("Mean customer upset  62 %"))
        #expect(lines.contains("Until                -"))
        let header = try #require(lines.firstIndex { $0.hasPrefix("CALL ") })
        #expect(lines.count == header + 4)
        #expect(lines[header + 3].hasPrefix("call, \"two\" "))
    }

    @Test func periodReportHasOneRowPerKey() throws {
        let text = ReportRenderer.render(Fixtures.period(), as: .text)
        let lines = text.split(separator: "\n").map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("DAY ") })
        let table = Array(lines[header...])
        #expect(table.count == 4)
        #expect(Set(table.map(\.count)).count == 1)
        #expect(table[2].hasPrefix("2025-03-01"))
        #expect(table[2].hasSuffix("8 %"))
        #expect(table[3].hasSuffix("-"))
    }
}
