/* crypto.c — thin wrappers over OpenSSL: digests, HMAC, base64, randomness. */
#include "core/crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <limits.h>
#include <string.h>

/* ---- digests ---------------------------------------------------------- */

int ac_crypto_hmac_sha256(const void *key, size_t key_len, const void *msg,
                          size_t msg_len, unsigned char out[AC_CRYPTO_SHA256_LEN]) {
  static const unsigned char empty[1] = {0};
  if (key_len > INT_MAX)
    return AC_ERR_INVALID;
  unsigned int n = 0;
  /* OpenSSL reads a NULL key as "no key given", not as an empty key. */
  if (!HMAC(EVP_sha256(), key_len ? key : empty, (int)key_len,
            msg_len ? msg : (const void *)empty, msg_len, out, &n) ||
      n != AC_CRYPTO_SHA256_LEN)
    return AC_ERR_INTERNAL;
  return AC_OK;
}

int ac_crypto_sha256(const void *data, size_t len, unsigned char out[AC_CRYPTO_SHA256_LEN]) {
  static const unsigned char empty[1] = {0};
  unsigned int n = 0;
  if (!EVP_Digest(len ? data : empty, len, out, &n, EVP_sha256(), NULL) ||
      n != AC_CRYPTO_SHA256_LEN)
    return AC_ERR_INTERNAL;
  return AC_OK;
}

int ac_crypto_hex(const void *data, size_t len, char *out, size_t out_size) {
  static const char digits[] = "0123456789abcdef";
  if (len > (SIZE_MAX - 1) / 2 || out_size < AC_CRYPTO_HEX_SIZE(len))
    return AC_ERR_LIMIT;
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  out[2 * len] = '\0';
  return AC_OK;
}

/* ---- base64 ----------------------------------------------------------- */

/* EVP_EncodeBlock/DecodeBlock take int lengths: work in chunks that keep
 * the quantum boundaries (3 bytes in, 4 chars out). */
#define ENC_CHUNK (3 * 65536)
#define DEC_CHUNK 4096

static int encode(const void *data, size_t len, int url, char *out, size_t out_size,
                  size_t *out_len) {
  if (len > (SIZE_MAX / 4) * 3 - 3 || out_size < AC_CRYPTO_B64_SIZE(len))
    return AC_ERR_LIMIT;
  const unsigned char *p = data;
  size_t pos = 0;
  for (size_t off = 0; off < len; off += ENC_CHUNK) {
    size_t n = len - off < ENC_CHUNK ? len - off : ENC_CHUNK;
    pos += (size_t)EVP_EncodeBlock((unsigned char *)out + pos, p + off, (int)n);
  }
  out[pos] = '\0';
  if (url) {
    while (pos > 0 && out[pos - 1] == '=')
      out[--pos] = '\0';
    for (size_t i = 0; i < pos; i++) {
      if (out[i] == '+')
        out[i] = '-';
      else if (out[i] == '/')
        out[i] = '_';
    }
  }
  if (out_len)
    *out_len = pos;
  return AC_OK;
}

int ac_crypto_base64_encode(const void *data, size_t len, char *out, size_t out_size,
                            size_t *out_len) {
  return encode(data, len, 0, out, out_size, out_len);
}

int ac_crypto_base64url_encode(const void *data, size_t len, char *out, size_t out_size,
                               size_t *out_len) {
  return encode(data, len, 1, out, out_size, out_len);
}

/* The 6-bit value of c in the chosen alphabet, or -1. */
static int b64_value(unsigned char c, int url) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == (url ? '-' : '+'))
    return 62;
  if (c == (url ? '_' : '/'))
    return 63;
  return -1;
}

/* Checks s[0..len) (data chars only, padding already removed) and returns
 * the decoded length, or a negative code with the reason in err. */
static int validate(const char *s, size_t len, int url, size_t *decoded, ac_err *err) {
  const char *what = url ? "base64url" : "base64";
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '=')
      return ac_err_set(err, AC_ERR_INVALID, "%s: %s at offset %zu", what,
                        url ? "padding is not allowed" : "misplaced padding", i);
    if (b64_value((unsigned char)s[i], url) < 0)
      return ac_err_set(err, AC_ERR_INVALID, "%s: invalid character at offset %zu", what, i);
  }
  size_t rem = len % 4;
  if (rem == 1)
    return ac_err_set(err, AC_ERR_INVALID, "%s: impossible length %zu", what, len);
  /* The last char of a partial quantum carries bits no byte uses; they must
   * be zero, or two encodings would decode to the same bytes. */
  if (rem) {
    int mask = rem == 2 ? 0x0F : 0x03;
    if (b64_value((unsigned char)s[len - 1], url) & mask)
      return ac_err_set(err, AC_ERR_INVALID, "%s: non-canonical trailing bits", what);
  }
  *decoded = (len / 4) * 3 + (rem ? rem - 1 : 0);
  return AC_OK;
}

/* Decodes validated data chars (any alphabet, no padding) into out, which
 * holds AC_CRYPTO_B64_DECODED_SIZE(len) bytes. */
static int decode_validated(const char *s, size_t len, int url, unsigned char *out) {
  unsigned char tmp[DEC_CHUNK];
  size_t pos = 0;
  for (size_t off = 0; off < len; off += DEC_CHUNK) {
    size_t n = len - off < DEC_CHUNK ? len - off : DEC_CHUNK;
    for (size_t i = 0; i < n; i++) {
      char c = s[off + i];
      tmp[i] = (unsigned char)(url && c == '-' ? '+' : url && c == '_' ? '/' : c);
    }
    while (n % 4)
      tmp[n++] = '=';
    int got = EVP_DecodeBlock(out + pos, tmp, (int)n);
    if (got < 0)
      return AC_ERR_INTERNAL;
    pos += (size_t)got;
  }
  return AC_OK;
}

static int decode(const char *s, size_t len, int url, unsigned char *out, size_t out_size,
                  size_t *out_len, ac_err *err) {
  if (!s && len)
    return ac_err_set(err, AC_ERR_INVALID, "base64: no input");
  if (len > SIZE_MAX - 3 || out_size < AC_CRYPTO_B64_DECODED_SIZE(len))
    return ac_err_set(err, AC_ERR_LIMIT, "base64: output buffer too small");
  size_t data_len = len;
  if (!url) {
    if (len % 4)
      return ac_err_set(err, AC_ERR_INVALID, "base64: length %zu is not a multiple of 4", len);
    for (int i = 0; i < 2 && data_len > 0 && s[data_len - 1] == '='; i++)
      data_len--;
  }
  size_t decoded = 0;
  int rc = validate(s, data_len, url, &decoded, err);
  if (rc)
    return rc;
  if ((rc = decode_validated(s, data_len, url, out)))
    return ac_err_set(err, rc, "base64: OpenSSL refused validated input");
  if (out_len)
    *out_len = decoded;
  return AC_OK;
}

int ac_crypto_base64_decode(const char *s, size_t len, unsigned char *out, size_t out_size,
                            size_t *out_len, ac_err *err) {
  return decode(s, len, 0, out, out_size, out_len, err);
}

int ac_crypto_base64url_decode(const char *s, size_t len, unsigned char *out,
                               size_t out_size, size_t *out_len, ac_err *err) {
  return decode(s, len, 1, out, out_size, out_len, err);
}

/* ---- randomness and comparison ---------------------------------------- */

int ac_crypto_random_bytes(void *out, size_t n) {
  unsigned char *p = out;
  while (n > 0) {
    int chunk = n > INT_MAX ? INT_MAX : (int)n;
    if (RAND_bytes(p, chunk) != 1)
      return AC_ERR_INTERNAL;
    p += chunk;
    n -= (size_t)chunk;
  }
  return AC_OK;
}

int ac_crypto_random_id(char out[AC_CRYPTO_RANDOM_ID_SIZE]) {
  unsigned char raw[16];
  int rc = ac_crypto_random_bytes(raw, sizeof raw);
  if (rc)
    return rc;
  return ac_crypto_hex(raw, sizeof raw, out, AC_CRYPTO_RANDOM_ID_SIZE);
}

int ac_crypto_uuid_v4(char out[AC_CRYPTO_UUID_SIZE]) {
  unsigned char raw[16];
  char hex[AC_CRYPTO_HEX_SIZE(16)];
  int rc = ac_crypto_random_bytes(raw, sizeof raw);
  if (rc)
    return rc;
  raw[6] = (unsigned char)((raw[6] & 0x0F) | 0x40); /* version 4 */
  raw[8] = (unsigned char)((raw[8] & 0x3F) | 0x80); /* variant 10 */
  ac_crypto_hex(raw, sizeof raw, hex, sizeof hex);
  /* 8-4-4-4-12 */
  size_t o = 0;
  for (size_t i = 0; i < 32; i++) {
    if (i == 8 || i == 12 || i == 16 || i == 20)
      out[o++] = '-';
    out[o++] = hex[i];
  }
  out[o] = '\0';
  return AC_OK;
}

int ac_crypto_equal(const void *a, const void *b, size_t n) {
  return CRYPTO_memcmp(a, b, n) == 0;
}
