import CSpanDSP

/// spandsp's packet loss concealment on 8 kHz linear audio, shared by the decoders without one of their
/// own (G.711, G.722, L16): every decoded packet goes into its history, so a gap continues the voice
/// smoothly instead of dropping to silence.
final class PacketLossConcealment {
    private let plc: UnsafeMutablePointer<plc_state_t>

    init() {
        // spandsp allocates when handed nil; released in deinit.
        plc = plc_init(nil)!
    }

    deinit { plc_free(plc) }

    /// The first `count` samples of `audio` were heard (decoded): they become the history.
    func heard(_ audio: UnsafeMutableBufferPointer<Int16>, count: Int) {
        _ = plc_rx(plc, audio.baseAddress, Int32(count))
    }

    /// Synthesises up to `count` samples for a gap; returns the number written.
    func conceal(_ count: Int, into output: UnsafeMutableBufferPointer<Int16>) -> Int {
        let n = min(count, output.count)
        guard n > 0 else { return 0 }
        return Int(plc_fillin(plc, output.baseAddress, Int32(n)))
    }
}
