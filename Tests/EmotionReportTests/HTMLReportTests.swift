import EmotionHistory
import Testing

@testable import EmotionReport

@Suite struct HTMLReportTests {
    static func page(_ kind: String) -> String {
        switch kind {
        case "call": ReportRenderer.render(Fixtures.call(id: "<b>x</b>"), as: .html)
        case "agent": ReportRenderer.render(Fixtures.agent(), as: .html)
        default: ReportRenderer.render(Fixtures.period(), as: .html)
        }
    }

    @Test(arguments: ["call", "agent", "period"])
    func pageIsSelfContained(_ kind: String) {
        let html = Self.page(kind)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.contains("<style>"))
        let lower = html.lowercased()
        #expect(!lower.contains("<script"))
        #expect(!lower.contains("http"))
        #expect(!lower.contains("src="))
        #expect(!lower.contains("//"))
        #expect(!lower.contains("url("))
        #expect(!lower.contains("@import"))
    }

    @Test func escapesText() {
        #expect(HTML.escape("<b>&\"'") == "&lt;b&gt;&amp;&quot;&#39;")
        let html = ReportRenderer.render(Fixtures.call(id: "<b>x</b>"), as: .html)
        #expect(!html.contains("<b>"))
        #expect(html.contains("<title>Call &lt;b&gt;x&lt;/b&gt;</title>"))
    }

    @Test func oneTimelinePerLegWithALine() throws {
        let html = ReportRenderer.render(Fixtures.call(), as: .html)
        #expect(occurrences(of: "<svg class=\"timeline\"", in: html) == 2)
        for leg in ["leg-c", "leg-a"] {
            let svg = try #require(timelineSVG(leg: leg, in: html))
            #expect(svg.contains("<polyline class=\"upset-line\""))
            #expect(svg.contains("viewBox=\"0 0 800.0 220.0\" width=\"100%\""))
            #expect(svg.contains("<title id="))
            #expect(svg.contains("<desc id="))
        }
        #expect(html.contains("<h2>Customer leg leg-c</h2>"))
        #expect(html.contains("<h2>Agent leg leg-a</h2>"))
    }

    @Test func upsetStretchIsABandAndEscalationIsALine() throws {
        let html = ReportRenderer.render(Fixtures.call(), as: .html)
        let customer = try #require(timelineSVG(leg: "leg-c", in: html))
        let agent = try #require(timelineSVG(leg: "leg-a", in: html))
        #expect(occurrences(of: "<rect class=\"upset-band\"", in: customer) == 1)
        #expect(occurrences(of: "<rect class=\"upset-band\"", in: agent) == 0)
        #expect(occurrences(of: "<line class=\"escalation\"", in: customer) == 1)
        #expect(occurrences(of: "<line class=\"escalation\"", in: agent) == 0)
        #expect(customer.contains("<title>Escalation at 10.0 s after 4.0 s upset (2025-03-01T10:00:10Z)</title>"))
        // The band runs from the first upset window (8 s) to the next calm one (12 s) of a 12 s axis.
        #expect(SVGTimeline.upsetBands(Fixtures.customerLeg().points).map { [$0.from, $0.to] } == [[8, 12]])
        #expect(customer.contains("<rect class=\"upset-band\" x=\"540.0\" y=\"12.0\" width=\"246.0\""))
    }

    @Test func nilUpsetSplitsTheLine() throws {
        let html = ReportRenderer.render(Fixtures.call(), as: .html)
        let customer = try #require(timelineSVG(leg: "leg-c", in: html))
        let agent = try #require(timelineSVG(leg: "leg-a", in: html))
        // 0.1, 0.3, nil, 0.8, 1.0, 0.2: two lines, the gap between 4 s and 8 s undrawn.
        #expect(occurrences(of: "<polyline class=\"upset-line\"", in: customer) == 2)
        #expect(occurrences(of: "<polyline class=\"upset-line\"", in: agent) == 1)
        let runs = SVGTimeline.upsetRuns(Fixtures.customerLeg().points).map { $0.map(\.time) }
        #expect(runs == [[2, 4], [8, 10, 12]])
    }

    @Test func gridlinesAndAxisLabels() throws {
        let html = ReportRenderer.render(Fixtures.call(), as: .html)
        let customer = try #require(timelineSVG(leg: "leg-c", in: html))
        for label in ["0", "0.25", "0.50", "0.75", "1"] {
            #expect(customer.contains("text-anchor=\"end\">\(label)</text>"))
        }
        #expect(occurrences(of: "<line class=\"grid\" x1=\"48.0\"", in: customer) == 3)
        #expect(customer.contains(">10 s</text>"))
    }

    @Test func agentReportHasABarPerCall() {
        let html = ReportRenderer.render(Fixtures.agent(), as: .html)
        #expect(occurrences(of: "<svg class=\"bar\"", in: html) == 1)  // the second call has no customer figure
        #expect(html.contains("<rect class=\"bar-fill\" width=\"62.5\""))
        #expect(html.contains("<td>call, &quot;two&quot;</td>"))
        #expect(occurrences(of: "<tr><td", in: html) == 2)  // two calls
    }

    @Test func periodReportHasOneRowPerKey() {
        let html = ReportRenderer.render(Fixtures.period(), as: .html)
        #expect(html.contains("<td>2025-03-01</td><td class=\"num\">12</td>"))
        #expect(html.contains("<td>2025-03-02</td>"))
        #expect(occurrences(of: "<tr><td", in: html) == 2)
    }

    @Test func outputIsDeterministic() {
        #expect(ReportRenderer.render(Fixtures.call(), as: .html) == ReportRenderer.render(Fixtures.call(), as: .html))
    }
}
