#ifndef EMOTIONTAP_COPENSSL_SHIM_H
#define EMOTIONTAP_COPENSSL_SHIM_H
// OpenSSL's libcrypto (Debian's libssl-dev) for the few digests the project needs: HMAC-SHA256 (event
// signatures, AudioHook's request signatures) and SHA-1 (the WebSocket handshake of the test client).
// One-shot calls only, so no OpenSSL object crosses into Swift.
#include <stddef.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/// HMAC-SHA256 of data under key into out (32 bytes); 1 on success.
static inline int et_hmac_sha256(const void *key, size_t key_length, const void *data, size_t length,
                                 unsigned char *out) {
    size_t written = 0;
    static const unsigned char empty = 0;
    // EVP_Q_mac refuses a NULL key even when its length is 0.
    if (key == NULL) key = &empty;
    if (data == NULL) data = &empty;
    return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_length, (const unsigned char *)data, length,
                     out, 32, &written) != NULL && written == 32;
}

/// SHA-1 of data into out (20 bytes); 1 on success.
static inline int et_sha1(const void *data, size_t length, unsigned char *out) {
    static const unsigned char empty = 0;
    if (data == NULL) data = &empty;
    return EVP_Digest(data, length, out, NULL, EVP_sha1(), NULL);
}

/// 1 when the n bytes at a and b are equal, in time that does not depend on where they differ.
static inline int et_equal_constant_time(const void *a, const void *b, size_t n) { return CRYPTO_memcmp(a, b, n) == 0; }
#endif
