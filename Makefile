# EmotionTap: `make demo` and `make test` are the two commands a new user runs.
SWIFT ?= swift
CONFIG ?= release
BIN := .build/$(CONFIG)/emotiontap
CORPORA ?= ../shared/corpora

.PHONY: all deps build debug test demo bench goldens model eval clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c $(CONFIG) --product emotiontap

debug: deps
	$(SWIFT) build

# Unit, golden and end-to-end tests (Swift Testing). Corpus tests skip when $(CORPORA) is absent.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Analyses the bundled sample call (a calm stretch, then an angry one) second by second.
demo: build
	$(BIN) analyze config/samples/sample-call.wav --format text

# Feature-extraction speed in times real time (package-benchmark, its own package).
bench: deps
	cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark

# Regenerates the librosa golden frames (needs Python with tools/requirements-goldens.txt).
goldens:
	python3 tools/librosa_goldens.py

clean:
	rm -rf .build Benchmarks/.build
