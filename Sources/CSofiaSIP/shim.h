#ifndef EMOTIONTAP_CSOFIASIP_SHIM_H
#define EMOTIONTAP_CSOFIASIP_SHIM_H
// Sofia-SIP's user agent (nua) and its SDP and MIME parsers. Tag lists are variadic and many tags are
// macros, neither of which Swift can call: the fixed calls the recording server needs are wrapped here.
// System headers first, under the default feature macros: Sofia's headers would otherwise pull them in
// under their own and clash with Swift's Glibc module (fd_set).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <sofia-sip/su.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/su_alloc.h>
#include <sofia-sip/su_log.h>
#include <sofia-sip/su_tag.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/msg_mime.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sdp.h>
#include <sofia-sip/tport_tag.h>

/// The recording server's user agent: no media engine (the service writes its own answers), no
/// automatic answer, siprec and session timers supported, OPTIONS answered by the stack.
/// `sips_url` and `cert_dir` may be NULL (no TLS).
static inline nua_t *et_nua_create(su_root_t *root, nua_callback_f callback, nua_magic_t *magic,
                                   char const *url, char const *sips_url, char const *cert_dir,
                                   unsigned session_expires, unsigned min_se) {
    return nua_create(root, callback, magic,
                      NUTAG_URL(url),
                      TAG_IF(sips_url != NULL, NUTAG_SIPS_URL(sips_url)),
                      TAG_IF(cert_dir != NULL, NUTAG_CERTIFICATE_DIR(cert_dir)),
                      NUTAG_MEDIA_ENABLE(0),
                      NUTAG_AUTOANSWER(0),
                      NUTAG_AUTOACK(1),
                      NUTAG_SESSION_TIMER(session_expires),
                      NUTAG_MIN_SE(min_se),
                      // NUTAG_ALLOW adds to nua's defaults; the header itself is what we serve.
                      SIPTAG_ALLOW_STR("INVITE, ACK, BYE, CANCEL, OPTIONS"),
                      SIPTAG_SUPPORTED_STR("timer, siprec"),
                      NUTAG_M_FEATURES("+sip.srs"),
                      SIPTAG_ACCEPT_STR("application/sdp, multipart/mixed, application/rs-metadata+xml"),
                      SIPTAG_USER_AGENT_STR("EmotionTap"),
                      TAG_END());
}

/// A response with the standard reason phrase; `warning` (a Warning header value, RFC 3261 20.43),
/// `content_type`, `body` and `require` may be NULL.
/// nua copies the tags but keeps the phrase as a bare pointer for as long as it may send the response
/// again (a 2xx is repeated until the ACK), long after this call: only a static phrase is safe, so the
/// detail goes in the Warning header, which is copied.
static inline void et_nua_respond(nua_handle_t *nh, int status, char const *warning,
                                  char const *content_type, char const *body, char const *require) {
    char const *phrase = sip_status_phrase(status);
    nua_respond(nh, status, phrase != NULL ? phrase : "Unknown",
                TAG_IF(warning != NULL, SIPTAG_WARNING_STR(warning)),
                TAG_IF(content_type != NULL, SIPTAG_CONTENT_TYPE_STR(content_type)),
                TAG_IF(body != NULL, SIPTAG_PAYLOAD_STR(body)),
                TAG_IF(require != NULL, SIPTAG_REQUIRE_STR(require)),
                TAG_END());
}

static inline void et_nua_bye(nua_handle_t *nh) { nua_bye(nh, TAG_END()); }
static inline void et_nua_shutdown(nua_t *nua) { nua_shutdown(nua); }

/// The call state a nua_i_state event carries (enum nua_callstate), or -1.
static inline int et_callstate(tagi_t const *tags) {
    int state = -1;
    tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
    return state;
}

static inline msg_content_type_t *et_content_type_make(su_home_t *home, char const *s) {
    return (msg_content_type_t *)msg_header_make(home, sip_content_type_class, s);
}

/// Item i of a NULL-terminated parameter or token list (Content-Type params, Require items), or NULL.
static inline char const *et_list_item(msg_param_t const *list, int i) {
    if (list == NULL) return NULL;
    for (int k = 0; k < i; k++) if (list[k] == NULL) return NULL;
    return list[i];
}

static inline unsigned et_rtpmap_pt(sdp_rtpmap_t const *rm) { return rm->rm_pt; }
static inline unsigned et_media_mode(sdp_media_t const *m) { return m->m_mode; }
static inline unsigned et_media_rejected(sdp_media_t const *m) { return m->m_rejected; }

static inline sdp_parser_t *et_sdp_parse(su_home_t *home, char const *text, int len) {
    return sdp_parse(home, text, len, 0);
}

/// Silences Sofia's own stderr logging below `level` (0-9) for every module.
static inline void et_sofia_log_level(int level) {
    su_log_set_level(NULL, level);
}
#endif
