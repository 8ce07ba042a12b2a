import EmotionHistory
import Testing

@testable import EmotionReport

@Suite struct CSVReportTests {
    @Test func quotesCommaAndQuoteAndDoublesQuotes() {
        #expect(CSVWriter.field("plain") == "plain")
        #expect(CSVWriter.field("a,b") == "\"a,b\"")
        #expect(CSVWriter.field("say \"hi\"") == "\"say \"\"hi\"\"\"")
        #expect(CSVWriter.field("two\r\nlines") == "\"two\r\nlines\"")
        #expect(CSVWriter.field("cr\r") == "\"cr\r\"")
    }

    @Test func agentReportHasHeaderCRLFQuotingAndEmptyNils() {
        let csv = ReportRenderer.render(Fixtures.agent(), as: .csv)
        #expect(csv.hasSuffix("\r\n"))
        // Every line break is CRLF: removing the CRLFs leaves no bare CR or LF.
        let records = csv.components(separatedBy: "\r\n")
        #expect(records.allSatisfy { !$0.contains("\n") && !$0.contains("\r") })
        #expect(records.count == 4)  // header, two calls, and the empty string after the last CRLF
        #expect(
            records[0]
                == "agent_id,call_id,started_at,duration_s,customer_upset_fraction,customer_start_upset,"
                + "customer_end_upset,customer_ended_calmer,escalations")
        #expect(records[1] == "agent-7,call-1,2025-03-01T10:00:00Z,60.00,0.625,0.100,0.200,false,1")
        #expect(records[2] == "agent-7,\"call, \"\"two\"\"\",2025-03-01T11:00:00Z,,,,,,0")
    }

    @Test func callReportHasOneRowPerTimelinePoint() {
        let csv = ReportRenderer.render(Fixtures.call(), as: .csv)
        let records = csv.components(separatedBy: "\r\n").dropLast()
        #expect(records.first == "call_id,leg_id,role,agent_id,media_s,upset,state")
        #expect(records.count == 1 + 6 + 2)
        #expect(records.contains("call-1,leg-c,customer,agent-7,2.00,0.100,calm"))
        #expect(records.contains("call-1,leg-c,customer,agent-7,6.00,,calm"))
        #expect(records.contains("call-1,leg-c,customer,agent-7,10.00,1.000,upset"))
        #expect(records.last == "call-1,leg-a,agent,agent-7,4.00,0.100,calm")
    }

    @Test func periodReportHasOneRowPerKey() {
        let csv = ReportRenderer.render(Fixtures.period(), as: .csv)
        let records = csv.components(separatedBy: "\r\n").dropLast()
        #expect(
            Array(records) == [
                "day,calls,customer_legs,upset_customer_share,mean_customer_upset,ended_calmer_share,escalation_rate",
                "2025-03-01,12,11,0.500,0.250,0.750,0.083",
                "2025-03-02,0,0,,,,",
            ])
    }
}
