# EmotionTap: `make demo` and `make test` are the two commands a new user runs.
SWIFT ?= swift
CONFIG ?= release
BIN := .build/$(CONFIG)/emotiontap
CORPORA ?= ../shared/corpora

.PHONY: all deps build debug test demo bench bench-live soak interop goldens model model-cnn eval fuzz format format-check clean

# The default model's recipe: `make model` rebuilds Sources/EmotionCore/Model/BuiltInModel.swift and
# prints each candidate's clip and call tables: first the frame networks the fusion candidates need
# (tools/frame_nets.sh, PyTorch CPU, both kinds with their exports: 67 minutes on 2 cores), then each
# candidate's cross-validation and final fit (about 9 minutes each). From a fresh clone, timed end to
# end on 2 cores (7 Dec 2026): 118 minutes, install and builds included.
# The fusion's flags come from tools/lib/model_recipe.sh, which tools/model_loco.sh reads too.
MODEL_FLAGS ?= $(shell bash -c '. tools/lib/model_recipe.sh && echo "$$fusion_flags"')
# Candidates `make model` trains and compares (docs/MODEL.md), and the one built into the binary.
MODEL_CANDIDATES ?= features features-leg fusion-leg fusion-leg-mel fusion-leg-mel-w0.7
SHIPPED_CANDIDATE ?= fusion-leg-mel-w0.7

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG) --product emotiontap

debug: deps
	$(SWIFT) build

# Unit, golden and end-to-end tests (Swift Testing), after a format check. Corpus tests skip when
# $(CORPORA) is absent. The committed fuzz corpus is replayed through the normal test build; the
# libFuzzer run itself is `make fuzz` (it builds everything again with sanitizers). Then two calls through
# Kamailio and userspace rtpengine (tools/interop_kamailio.sh, as `make interop`).
# No debug info in the test build (-gnone): a fresh clone builds about a minute sooner on 2 cores, and
# crash backtraces still name the functions.
TEST_BUILD_FLAGS ?= -Xswiftc -gnone -Xcc -g0
test: deps format-check
	$(SWIFT) build --build-tests $(TEST_BUILD_FLAGS)
	@# Three at once: the unit tests (swift test), the black-box tests (the test bundle run directly:
	@# SwiftPM locks .build, so a second swift test would wait for the first) and the interop calls.
	@# The black-box tests are a process of their own because they block their threads while they wait
	@# on child processes, which would starve the in-process services' handlers (a request timed out
	@# twice). They and the calls mostly wait on real time; their output follows the unit tests'.
	@e2e=$$(mktemp); calls=$$(mktemp); \
	 .build/debug/EmotionTapPackageTests.xctest --testing-library swift-testing --filter EmotionTapEndToEndTests \
	   > "$$e2e" 2>&1 & e2e_pid=$$!; \
	 tools/interop_kamailio.sh .build/debug/emotiontap > "$$calls" 2>&1 & calls_pid=$$!; \
	 $(SWIFT) test --skip-build --skip EmotionTapEndToEndTests; unit=$$?; \
	 wait $$calls_pid; calls_rc=$$?; wait $$e2e_pid; e2e_rc=$$?; \
	 cat "$$e2e" "$$calls"; rm -f "$$e2e" "$$calls"; \
	 [ $$unit -eq 0 ] || { echo "make test: unit tests failed"; exit 1; }; \
	 [ $$e2e_rc -eq 0 ] || { echo "make test: black-box tests failed"; exit 1; }; \
	 [ $$calls_rc -eq 0 ] || { echo "make test: interop calls failed"; exit 1; }

# swift-format (in the toolchain) with the checked-in .swift-format: `make format` rewrites,
# `make format-check` fails on any file that is not formatted.
FORMAT_PATHS := Package.swift Sources Tests Benchmarks/Package.swift Benchmarks/Benchmarks
format:
	$(SWIFT) format format --in-place --recursive --parallel $(FORMAT_PATHS)

format-check:
	$(SWIFT) format lint --strict --recursive --parallel $(FORMAT_PATHS)

# Starts the service on loopback, streams the bundled sample call (a calm stretch, then an angry
# one) to it over RTP in real time, and prints the events as they arrive.
demo: build
	BIN=$(BIN) scripts/demo.sh

# Inner loops in times real time (package-benchmark, its own package); the live service and the
# load generator side by side on loopback, one table for every step (BENCH_STEPS: G.711 legs, Opus
# legs, Twilio WebSocket streams, BENCH_SECONDS each; tools/bench_live.sh); feature extraction
# against librosa on the same audio.
BENCH_STEPS ?= 500:pcmu 1000:pcmu 1500:pcmu 2000:pcmu 3000:pcmu 500:opus 1000:opus 500:pcmu:twilio
bench: build
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark
	BIN=$(BIN) BENCH_STEPS="$(BENCH_STEPS)" tools/bench_live.sh
	@if python3 -c 'import librosa, soundfile' 2>/dev/null; then python3 tools/features_speed.py --bin $(BIN); \
	 else echo "features vs librosa: skipped (pip install -r tools/requirements-goldens.txt)"; fi

# Two calls through real peers (Debian packages kamailio, rtpengine-daemon, sip-tester, baresip-core),
# all on loopback and free ports: Kamailio and userspace rtpengine with sip-examples/kamailio-rtpengine's
# config and fork helper; a sipp caller and callee talking G.711 both ways, then two baresip UAs talking
# Opus; passes when both legs of each call get leg.start with the call's codec, emotion events and
# leg.end at BYE (about 25 s; INTEROP_CALLS=sipp or =baresip runs one). Without building:
# tools/interop_kamailio.sh BINARY.
interop: build
	tools/interop_kamailio.sh $(BIN)

# 500 legs for 10 minutes with 5 % loss and hostile packets mixed in (SOAK_LEGS, SOAK_SECONDS,
# SOAK_LOSS, SOAK_MALFORMED): passes when the service stays up, RSS grows under 5 % after warm-up,
# and every leg gets its events and its leg.end.
soak: build
	BIN=$(BIN) tools/soak.sh

model: build
	@# The frame networks the candidates fuse: gated ones with the mel bands (the shipped recipe), gated
	@# ones without them (fusion-leg), full ones for fusion-leg-full.
	@variants=$$(for c in $(MODEL_CANDIDATES); do case $$c in fusion|fusion-leg) echo gated ;; \
	   fusion-leg-full) echo full ;; fusion-leg-mel|fusion-leg-mel-w0.7) echo mel ;; esac; done | sort -u); \
	 for v in $$variants; do tools/frame_nets.sh "$(BIN)" "$(CORPORA)" $$v || exit 1; done
	tools/model_candidates.sh "$(BIN)" "$(CORPORA)" "$(MODEL_FLAGS)" "$(SHIPPED_CANDIDATE)" "$(MODEL_CANDIDATES)"
	$(SWIFT) build -c $(CONFIG) --product emotiontap

# Only frame networks (training/, PyTorch CPU: pip install -r training/requirements.txt), the shipped
# recipe's by default (FRAME_NET_VARIANT=mel; gated or full for the older candidates'): the Swift core's
# frames exported, one network per speaker fold and one on all clips (two at a time), their CV table in
# docs/ and the golden vectors for the Swift tests (tools/frame_nets.sh says which files).
FRAME_NET_VARIANT ?= mel
model-cnn: build
	tools/frame_nets.sh "$(BIN)" "$(CORPORA)" "$(FRAME_NET_VARIANT)"

eval: build
	$(BIN) eval --corpora $(CORPORA)

bench-live: build
	BIN=$(BIN) tools/bench_live.sh

# libFuzzer over the parsers that take outside bytes (WAV, RTP payloads into G.711/Opus legs, YAML
# config, API bodies, raw datagrams). FUZZ_SECONDS=600 for a longer run, FUZZ_TARGETS=0,3,4,5 to
# limit it to some (docs/FUZZING.md); a crash lands in .build-fuzz/crashes: copy it into
# Tests/FuzzCorpus so the replay test keeps it fixed.
FUZZ_SECONDS ?= 60
FUZZ_RUNS ?= -1
FUZZ_TARGETS ?=
fuzz: deps
	$(SWIFT) build --product EmotionTapFuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
	mkdir -p .build-fuzz/corpus .build-fuzz/crashes
	cp -n Tests/FuzzCorpus/* .build-fuzz/corpus/ 2>/dev/null || true
	EMOTIONTAP_FUZZ_TARGETS=$(FUZZ_TARGETS) ASAN_OPTIONS=suppressions=$(CURDIR)/Tests/asan.supp:detect_leaks=0 \
	  .build-fuzz/debug/EmotionTapFuzz .build-fuzz/corpus -max_total_time=$(FUZZ_SECONDS) -runs=$(FUZZ_RUNS) \
	  -max_len=4096 -artifact_prefix=.build-fuzz/crashes/ -print_final_stats=1

# Regenerates the librosa golden frames (needs Python with tools/requirements-goldens.txt).
goldens:
	python3 tools/librosa_goldens.py

clean:
	rm -rf .build .build-fuzz .build-asan .build-tsan Benchmarks/.build
