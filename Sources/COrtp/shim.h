#ifndef EMOTIONTAP_CORTP_SHIM_H
#define EMOTIONTAP_CORTP_SHIM_H
#include <ortp/ortp.h>

// oRTP exposes these as function-like macros, which Swift cannot call.
static inline uint16_t et_rtp_get_seqnumber(const mblk_t *m) { return rtp_get_seqnumber(m); }
static inline uint32_t et_rtp_get_timestamp(const mblk_t *m) { return rtp_get_timestamp(m); }
static inline uint32_t et_rtp_get_ssrc(const mblk_t *m) { return rtp_get_ssrc(m); }
static inline int et_rtp_get_payload_type(const mblk_t *m) { return rtp_get_payload_type(m); }
static inline int et_rtp_get_markbit(const mblk_t *m) { return rtp_get_markbit(m); }

// Swift 6 cannot take the address of a C global.
static inline RtpProfile *et_av_profile(void) { return &av_profile; }

// The "ortp" domain macro expands to "bctbx" outside the library, so set the mask by name.
static inline void et_ortp_set_log_mask(int mask) { bctbx_set_log_level_mask("ortp", mask); }
#endif
