#!/usr/bin/env bash
# Installs the Debian packages EmotionTap builds and tests against, only those missing.
# Idempotent: a second run installs nothing. Usage: scripts/install-deps.sh [extra-package ...]
set -euo pipefail

packages=(
  pkg-config
  libortp-dev      # RTP sessions
  libopus-dev      # Opus decoding
  libfftw3-dev     # FFT
  libspandsp-dev   # G.711 and packet loss concealment
  libsoxr-dev      # resampling of WAV input at other rates
  libopenblas-dev  # GEMM for the frame-level network
  libsofia-sip-ua-dev  # SIP stack, SDP and MIME parsers for the SIPREC recording server
  libxml2          # FoundationXML (SIPREC recording metadata)
  libsrtp2-dev     # SRTP (SDES keys) on legs
  sip-tester       # sipp, for the RTP scenarios in sip-examples/
  kamailio         # the interop test: a real proxy with sip-examples/kamailio-rtpengine's config
  rtpengine-daemon # ...and a real media relay (userspace only) forking to EmotionTap
  baresip-core     # ...and a real SIP UA on both ends of its Opus call (without recommends: 14
                   # packages, ~11 MB, mostly audio libraries: jack, portaudio, sndfile, amr, directfb)
  curl             # the demo and the examples call the control API with it
  chromium         # the supervisor page's test: a real browser, headless, on the live view
  libsqlite3-dev   # the embedded history store (GRDB)
  libpq-dev        # the shared history store (PostgreSQL's client library)
  libssl-dev       # HMAC-SHA256 and SHA-1 from libcrypto (event and AudioHook signatures)
  postgresql       # the shared history store's tests: a throwaway server on loopback per test
  "$@"
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

install_debian_packages() {
echo "install-deps: installing missing Debian packages: ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: apt-get is not available here; install these packages by hand: ${missing[*]}" >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    echo "install-deps: not root and no password-less sudo; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if [ ${#missing[@]} -gt 0 ]; then
  install_debian_packages
fi

# The event schema is checked in the tests with Python's jsonschema.
if ! python3 -c 'import jsonschema' 2>/dev/null; then
  echo "install-deps: installing Python jsonschema for the event schema tests"
  # pip for a python3 of its own (pyenv, venv); Debian's package for the system python3 (PEP 668).
  python3 -m pip install --quiet jsonschema 2>/dev/null \
    || { missing=(python3-jsonschema); install_debian_packages; } \
    || { echo "install-deps: cannot install jsonschema for python3" >&2; exit 1; }
fi
