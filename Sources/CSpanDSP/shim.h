#ifndef EMOTIONTAP_CSPANDSP_SHIM_H
#define EMOTIONTAP_CSPANDSP_SHIM_H
// Only G.711, G.722 and packet loss concealment: the umbrella header drags in libtiff.
#include <stdint.h>
#include <stdbool.h>
#include <spandsp/telephony.h>
#include <spandsp/bit_operations.h>
#include <spandsp/g711.h>
#include <spandsp/plc.h>
#include <spandsp/g722.h>

static inline int16_t et_ulaw_to_linear(uint8_t v) { return ulaw_to_linear(v); }
static inline int16_t et_alaw_to_linear(uint8_t v) { return alaw_to_linear(v); }
static inline uint8_t et_linear_to_ulaw(int v) { return linear_to_ulaw(v); }
static inline uint8_t et_linear_to_alaw(int v) { return linear_to_alaw(v); }
#endif
