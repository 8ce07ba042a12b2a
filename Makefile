# EmotionTap: `make demo` and `make test` are the two commands a new user runs.
SWIFT ?= swift
CONFIG ?= release
BIN := .build/$(CONFIG)/emotiontap
CORPORA ?= ../shared/corpora

.PHONY: all deps build debug test demo bench bench-live goldens model eval fuzz clean

# The default model's recipe: `make model` rebuilds Sources/EmotionCore/Model/BuiltInModel.swift
# (about 3 minutes on 2 cores) and prints the speaker-grouped cross-validation it reached.
MODEL_FLAGS ?= --seed 1 --cv 5 --augment 4 --epochs 25 --ensemble 3 --hidden 128 --dropout 0.5

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG) --product emotiontap

debug: deps
	$(SWIFT) build

# Unit, golden and end-to-end tests (Swift Testing). Corpus tests skip when $(CORPORA) is absent.
# Ends with a short libFuzzer run (FUZZ_TEST_SECONDS) over the parsers that take outside bytes.
FUZZ_TEST_SECONDS ?= 20
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(MAKE) fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS)

# Starts the service on loopback, streams the bundled sample call (a calm stretch, then an angry
# one) to it over RTP in real time, and prints the events as they arrive.
demo: build
	BIN=$(BIN) scripts/demo.sh

# Inner loops in times real time (package-benchmark, its own package), then the live service and
# the load generator side by side on loopback (BENCH_LEGS, BENCH_SECONDS, BENCH_CODEC to change the steps).
bench: build
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark
	BIN=$(BIN) tools/bench_live.sh

model: build
	$(BIN) train --corpora $(CORPORA) --out .build/default-model.json --embed-swift Sources/EmotionCore/Model/BuiltInModel.swift $(MODEL_FLAGS) | tee docs/model-cv.txt
	$(SWIFT) build -c $(CONFIG) --product emotiontap

eval: build
	$(BIN) eval --corpora $(CORPORA)

bench-live: build
	BIN=$(BIN) tools/bench_live.sh

# libFuzzer over the parsers that take outside bytes (WAV, RTP payloads into G.711/Opus legs, YAML
# config). FUZZ_SECONDS=600 for a longer run; a crash lands in .build-fuzz/crashes: copy it into
# Tests/FuzzCorpus so the replay test keeps it fixed.
FUZZ_SECONDS ?= 60
fuzz: deps
	$(SWIFT) build --product EmotionTapFuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
	mkdir -p .build-fuzz/corpus .build-fuzz/crashes
	cp -n Tests/FuzzCorpus/* .build-fuzz/corpus/ 2>/dev/null || true
	ASAN_OPTIONS=suppressions=$(CURDIR)/Tests/asan.supp:detect_leaks=0 .build-fuzz/debug/EmotionTapFuzz .build-fuzz/corpus \
	  -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -artifact_prefix=.build-fuzz/crashes/ -print_final_stats=1

# Regenerates the librosa golden frames (needs Python with tools/requirements-goldens.txt).
goldens:
	python3 tools/librosa_goldens.py

clean:
	rm -rf .build .build-fuzz .build-asan .build-tsan Benchmarks/.build
