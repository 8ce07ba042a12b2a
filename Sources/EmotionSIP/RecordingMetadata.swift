import Foundation

#if canImport(FoundationXML)
    import FoundationXML
#endif

/// The recording metadata of a SIPREC session (RFC 7865, `application/rs-metadata+xml`): who takes part
/// and which stream each one sends. Only what the service needs is kept.
public struct RecordingMetadata: Sendable, Equatable {
    public struct Participant: Sendable, Equatable {
        public var id: String
        /// The participant's address of record (`nameID aor`), e.g. "sip:alice@example.com".
        public var aor: String?
        public var name: String?
    }

    /// The recording session's id (`session session_id`), if given.
    public var sessionID: String?
    public var participants: [Participant] = []
    /// Stream id to its SDP label (`stream` / `label`).
    public var streamLabels: [String: String] = [:]
    /// Participant id to the stream ids it sends (`participantstreamassoc` / `send`).
    public var sends: [String: [String]] = [:]

    /// The participant who sends the stream with this SDP label: by `participantstreamassoc`, never by
    /// the order of m-lines.
    public func sender(ofLabel label: String) -> Participant? {
        let streams = streamLabels.filter { $0.value == label }.map(\.key)
        guard !streams.isEmpty else { return nil }
        for p in participants where sends[p.id, default: []].contains(where: streams.contains) { return p }
        return nil
    }

    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Parses the XML; any well-formedness error is an error (a 400 for the INVITE).
    public static func parse(_ data: Data) throws(ParseError) -> RecordingMetadata {
        let reader = Reader()
        let parser = XMLParser(data: data)
        parser.delegate = reader
        parser.shouldProcessNamespaces = true
        parser.shouldResolveExternalEntities = false
        // Linux's XMLParser can return true on a truncated document and set only `parserError`.
        guard parser.parse(), parser.parserError == nil, !reader.failed else {
            let line = parser.lineNumber
            throw ParseError(description: "recording metadata is not well-formed XML (line \(line))")
        }
        guard reader.sawRoot else {
            throw ParseError(description: "recording metadata has no <recording> element")
        }
        return reader.metadata
    }

    /// A SAX reader; elements are matched by local name (the namespace is RFC 7865's, prefixes vary).
    private final class Reader: NSObject, XMLParserDelegate {
        var metadata = RecordingMetadata()
        var sawRoot = false
        private var path: [String] = []
        private var text = ""
        private var participant: Participant?
        private var streamID: String?
        private var assocParticipant: String?

        func parser(
            _ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            path.append(name)
            text = ""
            switch name {
            case "recording": sawRoot = true
            case "session":
                if metadata.sessionID == nil, let id = attributes["session_id"] { metadata.sessionID = id }
            case "participant":
                participant = Participant(id: attributes["participant_id"] ?? "", aor: nil, name: nil)
            case "nameID":
                if participant != nil { participant?.aor = attributes["aor"] }
            case "stream": streamID = attributes["stream_id"]
            case "participantstreamassoc": assocParticipant = attributes["participant_id"]
            default: break
            }
        }

        var failed = false
        func parser(_ parser: XMLParser, parseErrorOccurred parseError: any Error) { failed = true }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            // Bounded: a hostile document cannot grow one text node without limit.
            if text.utf8.count < 4096 { text += string }
        }

        func parser(
            _ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?
        ) {
            let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
            switch name {
            case "participant":
                if let p = participant, !p.id.isEmpty { metadata.participants.append(p) }
                participant = nil
            case "name":
                if participant != nil, !value.isEmpty { participant?.name = value }
            case "label":
                if let streamID, !value.isEmpty { metadata.streamLabels[streamID] = value }
            case "stream": streamID = nil
            case "send":
                // RFC 7865 puts <send> in <participantstreamassoc>; early SRCs (draft format) inside <participant>.
                if let p = assocParticipant ?? participant?.id, !value.isEmpty {
                    metadata.sends[p, default: []].append(value)
                }
            case "participantstreamassoc": assocParticipant = nil
            default: break
            }
            path.removeLast()
            text = ""
        }
    }
}
