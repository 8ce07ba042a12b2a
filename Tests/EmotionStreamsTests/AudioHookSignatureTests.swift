import EmotionStreams
import Foundation
import Testing

@Suite("AudioHook request signatures")
struct AudioHookSignatureTests {
    // The example of Genesys' AudioHook protocol documentation ("Establishing a connection").
    let headers = [
        "audiohook-organization-id": "d7934305-0972-4844-938e-9060eef73d05",
        "audiohook-correlation-id": "e160e428-53e2-487c-977d-96989bf5c99d",
        "audiohook-session-id": "30b0e395-84d3-4570-ac13-9a62d8f514c0",
        "x-api-key": "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh",
        "signature": "sig1=:NZBwyBHRRyRoeLqy1IzOa9VYBuI8TgMFt2GRDkDuJh4=:",
        "signature-input":
            "sig1=(\"@request-target\" \"@authority\" \"audiohook-organization-id\" \"audiohook-session-id\" "
            + "\"audiohook-correlation-id\" \"x-api-key\");keyid=\"SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh\";"
            + "nonce=\"VGhpc0lzQVVuaXF1ZU5vbmNl\";alg=\"hmac-sha256\";created=1641013200;expires=3282026430",
    ]
    let secrets = [
        "SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh": Array(Data(base64Encoded: "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU=")!)
    ]
    let created = Date(timeIntervalSince1970: 1_641_013_205)

    @Test("the documentation's example verifies; a changed header, key, secret or time does not")
    func documentedExample() {
        let ok = AudioHookSignature.verify(
            requestTarget: "/api/v1/voicebiometrics/ws", authority: "audiohook.example.com", headers: headers,
            secrets: secrets, now: created)
        #expect(throws: Never.self) { try ok.get() }

        var other = headers
        other["audiohook-session-id"] = "30b0e395-84d3-4570-ac13-9a62d8f514c1"
        #expect(
            AudioHookSignature.verify(
                requestTarget: "/api/v1/voicebiometrics/ws", authority: "audiohook.example.com", headers: other,
                secrets: secrets, now: created
            ).failureDescription == "signature verification failed")
        #expect(
            (try? AudioHookSignature.verify(
                requestTarget: "/api/v1/other", authority: "audiohook.example.com", headers: headers,
                secrets: secrets, now: created
            ).get()) == nil)
        let wrongSecret = ["SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh": Array("not the secret".utf8)]
        #expect(
            (try? AudioHookSignature.verify(
                requestTarget: "/api/v1/voicebiometrics/ws", authority: "audiohook.example.com", headers: headers,
                secrets: wrongSecret, now: created
            ).get()) == nil)
        #expect(
            AudioHookSignature.verify(
                requestTarget: "/api/v1/voicebiometrics/ws", authority: "audiohook.example.com", headers: headers,
                secrets: ["another-key": []], now: created
            ).failureDescription == "unknown API key")
        // A minute later the same request is a replay.
        #expect(
            AudioHookSignature.verify(
                requestTarget: "/api/v1/voicebiometrics/ws", authority: "audiohook.example.com", headers: headers,
                secrets: secrets, now: created.addingTimeInterval(60)
            )
            .failureDescription == "the signature is too old or from the future")
    }

    @Test("a key with an empty secret may connect unsigned; one with a secret may not")
    func unsigned() {
        var plain = headers
        plain["signature"] = nil
        plain["signature-input"] = nil
        #expect(
            (try? AudioHookSignature.verify(
                requestTarget: "/", authority: "h", headers: plain,
                secrets: ["SGVsbG8sIEkgYW0gdGhlIEFQSSBrZXkh": []]
            ).get()) != nil)
        #expect(
            (try? AudioHookSignature.verify(requestTarget: "/", authority: "h", headers: plain, secrets: secrets).get())
                == nil)
    }
}

extension Result where Success == Void, Failure == AudioHookSignature.Problem {
    var failureDescription: String? {
        if case .failure(let p) = self { return p.description }
        return nil
    }
}
