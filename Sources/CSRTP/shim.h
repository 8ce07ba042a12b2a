#ifndef EMOTIONTAP_CSRTP_SHIM_H
#define EMOTIONTAP_CSRTP_SHIM_H
// libsrtp2: SRTP sessions keyed by SDES (RFC 4568). The policy setters are plain functions, but the
// policy struct is easier to fill here than from Swift.
#include <stdint.h>
#include <string.h>
#include <srtp2/srtp.h>

/// A session for one leg: `inbound` for a receiver (any SSRC), else outbound (the test sender).
/// `key` is the 30-byte master key and salt; `tag80` picks HMAC-SHA1-80, else -32.
static inline srtp_err_status_t et_srtp_create(srtp_t *session, const uint8_t *key, int tag80, int inbound) {
    srtp_policy_t policy;
    memset(&policy, 0, sizeof policy);
    if (tag80) {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtp);
    } else {
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&policy.rtp);
    }
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&policy.rtcp);
    policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    policy.key = (unsigned char *)key;
    // Receivers see reordering and re-INVITEs: a wide replay window.
    policy.window_size = 1024;
    policy.allow_repeat_tx = 0;
    policy.next = NULL;
    return srtp_create(session, &policy);
}
#endif
