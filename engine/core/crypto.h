/* crypto.h — hashing, HMAC, encodings and randomness, all on OpenSSL. */
#ifndef AC_CORE_CRYPTO_H
#define AC_CORE_CRYPTO_H

#include "core/err.h"

#include <stddef.h>

#define AC_CRYPTO_SHA256_LEN 32

/* Output sizes (bytes, NUL included where the result is text). */
#define AC_CRYPTO_HEX_SIZE(n) (2 * (n) + 1)
#define AC_CRYPTO_B64_SIZE(n) (4 * (((n) + 2) / 3) + 1)
#define AC_CRYPTO_B64_DECODED_SIZE(n) (3 * (((n) + 3) / 4))
#define AC_CRYPTO_RANDOM_ID_SIZE 33 /* 32 hex chars + NUL */
#define AC_CRYPTO_UUID_SIZE 37      /* 8-4-4-4-12 + NUL */

/* HMAC-SHA256 of msg under key into out (32 bytes). Either length may be
 * 0 (pointers may then be NULL). Returns AC_OK, or AC_ERR_INTERNAL if
 * OpenSSL fails. */
int ac_crypto_hmac_sha256(const void *key, size_t key_len, const void *msg,
                          size_t msg_len, unsigned char out[AC_CRYPTO_SHA256_LEN]);

/* SHA-256 of data into out (32 bytes). Returns AC_OK or AC_ERR_INTERNAL. */
int ac_crypto_sha256(const void *data, size_t len, unsigned char out[AC_CRYPTO_SHA256_LEN]);

/* Lower-case hex of len bytes into out, NUL-terminated. out_size must be at
 * least AC_CRYPTO_HEX_SIZE(len), else AC_ERR_LIMIT and out is untouched. */
int ac_crypto_hex(const void *data, size_t len, char *out, size_t out_size);

/* Standard base64 (RFC 4648 §4, with '=' padding, no line breaks) of len
 * bytes into out, NUL-terminated; *out_len (optional) gets the text length.
 * out_size must be at least AC_CRYPTO_B64_SIZE(len), else AC_ERR_LIMIT. */
int ac_crypto_base64_encode(const void *data, size_t len, char *out, size_t out_size,
                            size_t *out_len);

/* Strict standard base64 decode of len chars: padding required to a multiple
 * of 4, no whitespace, canonical trailing bits. Writes *out_len bytes to out
 * (out_size >= AC_CRYPTO_B64_DECODED_SIZE(len), else AC_ERR_LIMIT).
 * Malformed input: AC_ERR_INVALID with the reason in err. */
int ac_crypto_base64_decode(const char *s, size_t len, unsigned char *out, size_t out_size,
                            size_t *out_len, ac_err *err);

/* base64url (RFC 4648 §5) without padding, NUL-terminated; otherwise like
 * ac_crypto_base64_encode (AC_CRYPTO_B64_SIZE(len) is enough). */
int ac_crypto_base64url_encode(const void *data, size_t len, char *out, size_t out_size,
                               size_t *out_len);

/* Strict base64url decode as JWS wants it: refuses '=' padding, whitespace,
 * any char outside [A-Za-z0-9_-], a length of 1 mod 4 and non-zero unused
 * trailing bits (so each byte string has exactly one accepted encoding).
 * Sizes and errors as in ac_crypto_base64_decode. */
int ac_crypto_base64url_decode(const char *s, size_t len, unsigned char *out,
                               size_t out_size, size_t *out_len, ac_err *err);

/* n bytes from OpenSSL's CSPRNG. AC_ERR_INTERNAL if it cannot deliver. */
int ac_crypto_random_bytes(void *out, size_t n);

/* A random identifier: 16 CSPRNG bytes as 32 lower-case hex chars plus NUL
 * (128 bits, so collisions are not a concern). out holds
 * AC_CRYPTO_RANDOM_ID_SIZE bytes. */
int ac_crypto_random_id(char out[AC_CRYPTO_RANDOM_ID_SIZE]);

/* A random RFC 9562 version 4 UUID, lower-case 8-4-4-4-12 plus NUL. */
int ac_crypto_uuid_v4(char out[AC_CRYPTO_UUID_SIZE]);

/* 1 if the n bytes at a and b are equal, else 0, in time that depends only
 * on n (CRYPTO_memcmp): use it for MACs and signatures. */
int ac_crypto_equal(const void *a, const void *b, size_t n);

#endif
