import EmotionHistory
import Foundation

/// One leg's upset over media time as inline SVG: x is media seconds from the leg's first packet,
/// y the upset probability 0...1. The upset series is drawn as polylines broken where a window had
/// too little speech, stretches in the upset state as shaded bands behind it, escalations as
/// vertical lines with a tooltip.
struct SVGTimeline {
    var leg: LegTimeline
    /// Unique on the page: the ids `aria-labelledby` points at are made from it, not from the leg
    /// id, which may hold anything.
    var index: Int

    // MARK: Geometry, in viewBox units

    static let width = 800.0
    static let height = 220.0
    static let left = 48.0
    static let right = 14.0
    static let top = 12.0
    static let bottom = 40.0
    static let gridlines = [0.25, 0.5, 0.75]
    static let upsetState = "upset"

    var plotWidth: Double { Self.width - Self.left - Self.right }
    var plotHeight: Double { Self.height - Self.top - Self.bottom }

    /// Media seconds from 0 to the last thing on the timeline, and never less than a second wide.
    var duration: Double {
        let times = leg.points.map(\.time) + leg.stateChanges.map(\.time) + leg.escalations.map(\.mediaTime)
        return max(1, times.filter(\.isFinite).max() ?? 0)
    }

    func x(_ time: Double) -> Double {
        guard time.isFinite else { return Self.left }
        return Self.left + min(max(time, 0), duration) / duration * plotWidth
    }

    func y(_ upset: Double) -> Double {
        Self.top + (1 - min(max(upset, 0), 1)) * plotHeight
    }

    // MARK: Series

    /// Runs of consecutive points that have an upset value; a nil between two breaks the line.
    static func upsetRuns(_ points: [LegTimeline.Point]) -> [[(time: Double, upset: Double)]] {
        var runs: [[(time: Double, upset: Double)]] = []
        var current: [(time: Double, upset: Double)] = []
        for point in points {
            if let upset = Cell.usable(point.upset), point.time.isFinite {
                current.append((point.time, upset))
            } else if !current.isEmpty {
                runs.append(current)
                current = []
            }
        }
        if !current.isEmpty { runs.append(current) }
        return runs
    }

    /// Stretches of consecutive points in the upset state. A state holds from its point until the
    /// next point, so a stretch ends where the first point after it is; at the end of the timeline
    /// it ends at its own last point.
    static func upsetBands(_ points: [LegTimeline.Point]) -> [(from: Double, to: Double)] {
        var bands: [(from: Double, to: Double)] = []
        var start: Double?
        for point in points {
            if point.state == upsetState {
                if start == nil { start = point.time }
            } else if let from = start {
                bands.append((from, max(from, point.time)))
                start = nil
            }
        }
        if let from = start, let last = points.last { bands.append((from, max(from, last.time))) }
        return bands
    }

    // MARK: Rendering

    func render() -> HTML {
        let record = leg.record
        let titleID = "leg\(index)-title"
        let descID = "leg\(index)-desc"
        let viewBox = "0 0 \(Self.number(Self.width)) \(Self.number(Self.height))"
        var out = "<svg class=\"timeline\" data-leg=\"\(HTML.escape(record.legID))\" "
        out += "data-role=\"\(HTML.escape(record.role))\" viewBox=\"\(viewBox)\" width=\"100%\" "
        out += "role=\"img\" aria-labelledby=\"\(titleID) \(descID)\">\n"
        out += "<title id=\"\(titleID)\">\(HTML.escape(title))</title>\n"
        out += "<desc id=\"\(descID)\">\(HTML.escape(description))</desc>\n"
        out += "<rect class=\"plot\" x=\"\(Self.number(Self.left))\" y=\"\(Self.number(Self.top))\" "
        out += "width=\"\(Self.number(plotWidth))\" height=\"\(Self.number(plotHeight))\"/>\n"
        out += bands()
        out += grid()
        out += series()
        out += escalations()
        out += "</svg>"
        return HTML(raw: out)
    }

    var title: String { "\(HTMLReport.legLabel(leg.record)): upset over media time" }

    var description: String {
        let windows = leg.points.count
        let missing = leg.points.filter { $0.upset == nil }.count
        var text = "Upset probability from 0 to 1 over \(Cell.seconds(duration)) of media"
        text += ", \(windows) analysis \(windows == 1 ? "window" : "windows")"
        if missing > 0 { text += " (\(missing) without enough speech)" }
        let bands = Self.upsetBands(leg.points).count
        text += ", \(bands) upset \(bands == 1 ? "stretch" : "stretches")"
        let escalations = leg.escalations.count
        text += ", \(escalations) \(escalations == 1 ? "escalation" : "escalations")."
        return text
    }

    private func bands() -> String {
        var out = ""
        for band in Self.upsetBands(leg.points) {
            let x0 = x(band.from)
            // A stretch of one window at the very end has no width of its own: keep it visible.
            let width = max(2, x(band.to) - x0)
            out += "<rect class=\"upset-band\" x=\"\(Self.number(x0))\" y=\"\(Self.number(Self.top))\" "
            out += "width=\"\(Self.number(width))\" height=\"\(Self.number(plotHeight))\">"
            out += "<title>Upset from \(Cell.seconds(band.from)) to \(Cell.seconds(band.to))</title></rect>\n"
        }
        return out
    }

    private func grid() -> String {
        let x0 = Self.number(Self.left)
        let x1 = Self.number(Self.left + plotWidth)
        var out = ""
        for level in Self.gridlines {
            let yy = Self.number(y(level))
            out += "<line class=\"grid\" x1=\"\(x0)\" y1=\"\(yy)\" x2=\"\(x1)\" y2=\"\(yy)\"/>\n"
        }
        // The y axis: probability.
        for level in [0.0] + Self.gridlines + [1.0] {
            out += "<text class=\"label\" x=\"\(Self.number(Self.left - 6))\" y=\"\(Self.number(y(level) + 4))\" "
            out += "text-anchor=\"end\">\(Self.probabilityLabel(level))</text>\n"
        }
        // The x axis: media time.
        let axisY = Self.top + plotHeight
        let step = Self.tickStep(duration)
        var tick = 0.0
        while tick <= duration + step * 1e-9 {
            let xx = Self.number(x(tick))
            out += "<line class=\"tick\" x1=\"\(xx)\" y1=\"\(Self.number(axisY))\" x2=\"\(xx)\" "
            out += "y2=\"\(Self.number(axisY + 4))\"/>\n"
            out += "<text class=\"label\" x=\"\(xx)\" y=\"\(Self.number(axisY + 16))\" text-anchor=\"middle\">"
            out += "\(Self.timeLabel(tick, step: step))</text>\n"
            tick += step
        }
        out += "<text class=\"label\" x=\"\(x1)\" y=\"\(Self.number(Self.height - 4))\" text-anchor=\"end\">"
        out += "media time</text>\n"
        out += "<text class=\"label\" x=\"\(Self.number(4))\" y=\"\(Self.number(Self.top + 4))\">upset</text>\n"
        return out
    }

    private func series() -> String {
        var out = ""
        for run in Self.upsetRuns(leg.points) {
            if run.count == 1, let only = run.first {
                // A lone window between gaps is not a line; show it as a dot.
                out += "<circle class=\"upset-dot\" cx=\"\(Self.number(x(only.time)))\" "
                out += "cy=\"\(Self.number(y(only.upset)))\" r=\"2.5\"/>\n"
            } else {
                let points = run.map { "\(Self.number(x($0.time))),\(Self.number(y($0.upset)))" }
                out += "<polyline class=\"upset-line\" points=\"\(points.joined(separator: " "))\"/>\n"
            }
        }
        return out
    }

    private func escalations() -> String {
        var out = ""
        for mark in leg.escalations {
            let xx = Self.number(x(mark.mediaTime))
            out += "<line class=\"escalation\" x1=\"\(xx)\" y1=\"\(Self.number(Self.top))\" x2=\"\(xx)\" "
            out += "y2=\"\(Self.number(Self.top + plotHeight))\">"
            let tip = "Escalation at \(Cell.seconds(mark.mediaTime)) after \(Cell.seconds(mark.upsetSeconds)) upset"
            out += "<title>\(HTML.escape(tip + " (" + mark.timestamp + ")"))</title></line>\n"
        }
        return out
    }

    // MARK: Numbers

    /// Coordinates with one place: enough for a screen, and the same bytes every time.
    static func number(_ value: Double) -> String {
        let value = value.isFinite ? value : 0
        return String(format: "%.1f", value == 0 ? 0 : value)
    }

    static func probabilityLabel(_ level: Double) -> String {
        switch level {
        case 0: "0"
        case 1: "1"
        default: String(format: "%.2f", level)
        }
    }

    /// A round tick spacing that gives about eight ticks.
    static func tickStep(_ duration: Double) -> Double {
        let steps: [Double] = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]
        let wanted = duration / 8
        return steps.first { $0 >= wanted } ?? (wanted / 3600).rounded(.up) * 3600
    }

    static func timeLabel(_ seconds: Double, step: Double) -> String {
        if step < 1 { return String(format: "%.1f s", seconds) }
        if step < 60 { return String(format: "%.0f s", seconds) }
        let whole = Int(seconds.rounded())
        return String(format: "%d:%02d", whole / 60, whole % 60)
    }
}
