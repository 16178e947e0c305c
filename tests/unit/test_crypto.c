/* test_crypto.c — digests, HMAC, base64 (strict decoding), randomness. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Hex of a digest, for comparing with published vectors. */
static void hex_of(const unsigned char *d, size_t n, char *out, size_t size) {
  assert_int_equal(ac_crypto_hex(d, n, out, size), AC_OK);
}

static void fill(unsigned char *p, unsigned char v, size_t n) { memset(p, v, n); }

/* ---- HMAC-SHA256, RFC 4231 ---------------------------------------------- */

typedef struct {
  const char *name;
  unsigned char key_byte; /* 0: use key_text; 1: key is 0x01..0x19 */
  size_t key_len;
  const char *key_text;
  unsigned char data_byte; /* 0: use data_text */
  size_t data_len;
  const char *data_text;
  size_t check_len; /* bytes compared (case 5 is truncated to 128 bits) */
  const char *expect;
} hmac_case;

static const hmac_case hmac_cases[] = {
    {"rfc4231 1", 0x0b, 20, NULL, 0, 0, "Hi There", 32,
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
    {"rfc4231 2", 0, 0, "Jefe", 0, 0, "what do ya want for nothing?", 32,
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    {"rfc4231 3", 0xaa, 20, NULL, 0xdd, 50, NULL, 32,
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
    {"rfc4231 4", 1, 25, NULL, 0xcd, 50, NULL, 32,
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
    {"rfc4231 5", 0x0c, 20, NULL, 0, 0, "Test With Truncation", 16,
     "a3b6167473100ee06e0c796c2955552b"},
    {"rfc4231 6", 0xaa, 131, NULL, 0, 0,
     "Test Using Larger Than Block-Size Key - Hash Key First", 32,
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
    {"rfc4231 7", 0xaa, 131, NULL, 0, 0,
     "This is a test using a larger than block-size key and a larger than block-size "
     "data. The key needs to be hashed before being used by the HMAC algorithm.",
     32, "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
};

static void test_hmac_rfc4231(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof hmac_cases / sizeof hmac_cases[0]; i++) {
    const hmac_case *c = &hmac_cases[i];
    unsigned char key[256], data[256], mac[32];
    size_t key_len = c->key_len, data_len = c->data_len;
    if (c->key_text) {
      key_len = strlen(c->key_text);
      memcpy(key, c->key_text, key_len);
    } else if (c->key_byte == 1) {
      for (size_t k = 0; k < key_len; k++)
        key[k] = (unsigned char)(k + 1);
    } else {
      fill(key, c->key_byte, key_len);
    }
    if (c->data_text) {
      data_len = strlen(c->data_text);
      memcpy(data, c->data_text, data_len);
    } else {
      fill(data, c->data_byte, data_len);
    }
    assert_int_equal(ac_crypto_hmac_sha256(key, key_len, data, data_len, mac), AC_OK);
    char hex[65];
    hex_of(mac, c->check_len, hex, sizeof hex);
    if (strcmp(hex, c->expect) != 0)
      fail_msg("%s: got %s want %s", c->name, hex, c->expect);
  }
}

static void test_hmac_empty_key_and_message(void **state) {
  (void)state;
  unsigned char mac[32];
  char hex[65];
  /* HMAC-SHA256("", "") is a well-known constant. */
  assert_int_equal(ac_crypto_hmac_sha256(NULL, 0, NULL, 0, mac), AC_OK);
  hex_of(mac, 32, hex, sizeof hex);
  assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

/* ---- SHA-256 ------------------------------------------------------------ */

static void test_sha256(void **state) {
  (void)state;
  static const struct {
    const char *in, *expect;
  } cases[] = {
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unsigned char d[32];
    char hex[65];
    assert_int_equal(ac_crypto_sha256(cases[i].in, strlen(cases[i].in), d), AC_OK);
    hex_of(d, 32, hex, sizeof hex);
    assert_string_equal(hex, cases[i].expect);
  }
}

static void test_hex(void **state) {
  (void)state;
  const unsigned char in[] = {0x00, 0xff, 0xab, 0x10};
  char out[9];
  assert_int_equal(ac_crypto_hex(in, 4, out, sizeof out), AC_OK);
  assert_string_equal(out, "00ffab10");
  char small[8] = "unused";
  assert_int_equal(ac_crypto_hex(in, 4, small, sizeof small), AC_ERR_LIMIT);
  assert_string_equal(small, "unused");
  char empty[1];
  assert_int_equal(ac_crypto_hex(in, 0, empty, 1), AC_OK);
  assert_string_equal(empty, "");
}

/* ---- base64 ------------------------------------------------------------- */

/* RFC 4648 §10 vectors, plus bytes that hit the two alphabet differences. */
static const struct {
  const char *raw;
  size_t raw_len;
  const char *std, *url;
} b64_cases[] = {
    {"", 0, "", ""},
    {"f", 1, "Zg==", "Zg"},
    {"fo", 2, "Zm8=", "Zm8"},
    {"foo", 3, "Zm9v", "Zm9v"},
    {"foob", 4, "Zm9vYg==", "Zm9vYg"},
    {"fooba", 5, "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", 6, "Zm9vYmFy", "Zm9vYmFy"},
    {"\xfb\xff", 2, "+/8=", "-_8"},
    {"\xfb\xef\xbe", 3, "++++", "----"},
    {"\xff\xff\xff", 3, "////", "____"},
    {"\x00\x00", 2, "AAA=", "AAA"},
};

static void test_base64_vectors(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof b64_cases / sizeof b64_cases[0]; i++) {
    char enc[32];
    unsigned char dec[32];
    size_t n = 99;
    assert_int_equal(
        ac_crypto_base64_encode(b64_cases[i].raw, b64_cases[i].raw_len, enc, sizeof enc, &n),
        AC_OK);
    assert_string_equal(enc, b64_cases[i].std);
    assert_int_equal(n, strlen(b64_cases[i].std));
    assert_int_equal(ac_crypto_base64url_encode(b64_cases[i].raw, b64_cases[i].raw_len, enc,
                                                sizeof enc, &n),
                     AC_OK);
    assert_string_equal(enc, b64_cases[i].url);
    assert_int_equal(n, strlen(b64_cases[i].url));

    ac_err err;
    assert_int_equal(ac_crypto_base64_decode(b64_cases[i].std, strlen(b64_cases[i].std), dec,
                                             sizeof dec, &n, &err),
                     AC_OK);
    assert_int_equal(n, b64_cases[i].raw_len);
    assert_memory_equal(dec, b64_cases[i].raw, n);
    assert_int_equal(ac_crypto_base64url_decode(b64_cases[i].url, strlen(b64_cases[i].url), dec,
                                                sizeof dec, &n, &err),
                     AC_OK);
    assert_int_equal(n, b64_cases[i].raw_len);
    assert_memory_equal(dec, b64_cases[i].raw, n);
  }
}

/* Random round trips over many lengths, including ones past the internal
 * chunk sizes (196608 input bytes to encode, 4096 chars to decode). */
static void test_base64_round_trips(void **state) {
  (void)state;
  static const size_t lens[] = {0, 1, 2, 3, 4, 5, 31, 32, 33, 64, 100, 3071, 3072, 3073,
                                4096, 196607, 196608, 196609, 300001};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    size_t len = lens[i];
    unsigned char *raw = malloc(len + 1);
    char *enc = malloc(AC_CRYPTO_B64_SIZE(len));
    unsigned char *dec = malloc(AC_CRYPTO_B64_DECODED_SIZE(AC_CRYPTO_B64_SIZE(len)));
    assert_non_null(raw);
    assert_non_null(enc);
    assert_non_null(dec);
    assert_int_equal(ac_crypto_random_bytes(raw, len), AC_OK);
    for (int url = 0; url < 2; url++) {
      size_t n = 0, m = 0;
      int rc = url ? ac_crypto_base64url_encode(raw, len, enc, AC_CRYPTO_B64_SIZE(len), &n)
                   : ac_crypto_base64_encode(raw, len, enc, AC_CRYPTO_B64_SIZE(len), &n);
      assert_int_equal(rc, AC_OK);
      assert_int_equal(strlen(enc), n);
      ac_err err;
      size_t dsize = AC_CRYPTO_B64_DECODED_SIZE(n);
      rc = url ? ac_crypto_base64url_decode(enc, n, dec, dsize, &m, &err)
               : ac_crypto_base64_decode(enc, n, dec, dsize, &m, &err);
      if (rc)
        fail_msg("len %zu url %d: %s", len, url, err.msg);
      assert_int_equal(m, len);
      assert_memory_equal(dec, raw, len);
      if (url) {
        assert_null(strchr(enc, '='));
        assert_null(strchr(enc, '+'));
        assert_null(strchr(enc, '/'));
      }
    }
    free(raw);
    free(enc);
    free(dec);
  }
}

typedef struct {
  const char *in;
  size_t len; /* 0: strlen(in) */
  const char *why; /* substring of the error message */
} refusal;

static const refusal url_refusals[] = {
    {"Zg==", 0, "padding"},
    {"Zg=", 0, "padding"},
    {"Zm9vYg==", 0, "padding"},
    {"=", 0, "padding"},
    {"Z", 0, "impossible length"},
    {"Zm9vY", 0, "impossible length"},
    {"Zh", 0, "non-canonical"},      /* 'h' leaves bits set past "f" */
    {"Zm9", 0, "non-canonical"},     /* '9' leaves bits set past "fo" */
    {"Zm9 v", 0, "invalid character"},
    {" Zm9v", 0, "invalid character"},
    {"Zm9v\n", 0, "invalid character"},
    {"Zm9v\r\n", 0, "invalid character"},
    {"Zm\t9v", 0, "invalid character"},
    {"Zm+v", 0, "invalid character"}, /* standard alphabet in base64url */
    {"Zm/v", 0, "invalid character"},
    {"Zm.v", 0, "invalid character"},
    {"Zm\xc3\xa9v", 0, "invalid character"},
    {"Zm\0v", 4, "invalid character"},
};

static const refusal std_refusals[] = {
    {"Zg", 0, "multiple of 4"},
    {"Zg=", 0, "multiple of 4"},
    {"Zm9vY", 0, "multiple of 4"},
    {"Zh==", 0, "non-canonical"},
    {"Zm9=", 0, "non-canonical"},
    {"Z===", 0, "padding"},
    {"====", 0, "padding"},
    {"Zg==Zg==", 0, "padding"},
    {"Zm9v Zm9", 0, "invalid character"},
    {"-_8=", 0, "invalid character"}, /* base64url alphabet in standard */
    {"Zm9v\n\n\n\n", 0, "invalid character"},
};

static void check_refusals(const refusal *cases, size_t n, int url) {
  for (size_t i = 0; i < n; i++) {
    const refusal *c = &cases[i];
    size_t len = c->len ? c->len : strlen(c->in);
    unsigned char out[64];
    size_t got = 12345;
    ac_err err = {0};
    int rc = url ? ac_crypto_base64url_decode(c->in, len, out, sizeof out, &got, &err)
                 : ac_crypto_base64_decode(c->in, len, out, sizeof out, &got, &err);
    if (rc != AC_ERR_INVALID)
      fail_msg("case %zu (url %d): rc %d, want invalid", i, url, rc);
    if (!strstr(err.msg, c->why))
      fail_msg("case %zu (url %d): message \"%s\" lacks \"%s\"", i, url, err.msg, c->why);
    assert_int_equal(got, 12345); /* untouched on failure */
  }
}

static void test_base64url_strict(void **state) {
  (void)state;
  check_refusals(url_refusals, sizeof url_refusals / sizeof url_refusals[0], 1);
}

static void test_base64_strict(void **state) {
  (void)state;
  check_refusals(std_refusals, sizeof std_refusals / sizeof std_refusals[0], 0);
}

static void test_base64_buffer_limits(void **state) {
  (void)state;
  char enc[8];
  unsigned char dec[8];
  ac_err err;
  size_t n;
  /* "foobar" needs 9 bytes (8 chars + NUL). */
  assert_int_equal(ac_crypto_base64_encode("foobar", 6, enc, 8, &n), AC_ERR_LIMIT);
  assert_int_equal(ac_crypto_base64url_encode("foobar", 6, enc, 8, &n), AC_ERR_LIMIT);
  /* 12 chars may decode to 9 bytes. */
  assert_int_equal(ac_crypto_base64_decode("Zm9vYmFyZm9v", 12, dec, 8, &n, &err), AC_ERR_LIMIT);
  assert_int_equal(ac_crypto_base64url_decode("Zm9vYmFyZm9v", 12, dec, 8, &n, &err),
                   AC_ERR_LIMIT);
}

/* ---- Standard Webhooks published vector --------------------------------- */

static void test_standard_webhooks_vector(void **state) {
  (void)state;
  const char *secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  const char *id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
  const char *ts = "1614265330";
  const char *body = "{\"test\": 2432232314}";

  const char *b64key = secret + strlen("whsec_");
  unsigned char key[64];
  size_t key_len = 0;
  ac_err err;
  assert_int_equal(
      ac_crypto_base64_decode(b64key, strlen(b64key), key, sizeof key, &key_len, &err), AC_OK);
  assert_int_equal(key_len, 24);

  char content[256];
  int n = snprintf(content, sizeof content, "%s.%s.%s", id, ts, body);
  assert_true(n > 0 && (size_t)n < sizeof content);
  unsigned char mac[32];
  assert_int_equal(ac_crypto_hmac_sha256(key, key_len, content, (size_t)n, mac), AC_OK);
  char sig[AC_CRYPTO_B64_SIZE(32) + 3];
  memcpy(sig, "v1,", 3);
  assert_int_equal(ac_crypto_base64_encode(mac, 32, sig + 3, sizeof sig - 3, NULL), AC_OK);
  assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

/* ---- randomness and comparison ------------------------------------------ */

static void test_random_id(void **state) {
  (void)state;
  char a[AC_CRYPTO_RANDOM_ID_SIZE], b[AC_CRYPTO_RANDOM_ID_SIZE];
  assert_int_equal(ac_crypto_random_id(a), AC_OK);
  assert_int_equal(ac_crypto_random_id(b), AC_OK);
  assert_int_equal(strlen(a), 32);
  assert_int_equal(strspn(a, "0123456789abcdef"), 32);
  assert_string_not_equal(a, b);
}

static void test_uuid_v4(void **state) {
  (void)state;
  char seen[16][AC_CRYPTO_UUID_SIZE];
  for (int k = 0; k < 16; k++) {
    char *u = seen[k];
    assert_int_equal(ac_crypto_uuid_v4(u), AC_OK);
    assert_int_equal(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
      if (i == 8 || i == 13 || i == 18 || i == 23)
        assert_int_equal(u[i], '-');
      else
        assert_non_null(strchr("0123456789abcdef", u[i]));
    }
    assert_int_equal(u[14], '4');
    assert_non_null(strchr("89ab", u[19]));
    for (int j = 0; j < k; j++)
      assert_string_not_equal(seen[j], u);
  }
}

static void test_random_bytes_vary(void **state) {
  (void)state;
  unsigned char a[32] = {0}, b[32] = {0};
  assert_int_equal(ac_crypto_random_bytes(a, sizeof a), AC_OK);
  assert_int_equal(ac_crypto_random_bytes(b, sizeof b), AC_OK);
  assert_memory_not_equal(a, b, sizeof a);
  assert_int_equal(ac_crypto_random_bytes(NULL, 0), AC_OK);
}

static void test_equal(void **state) {
  (void)state;
  assert_true(ac_crypto_equal("abcdef", "abcdef", 6));
  assert_false(ac_crypto_equal("abcdef", "abcdeg", 6));
  assert_false(ac_crypto_equal("xbcdef", "abcdef", 6));
  assert_true(ac_crypto_equal("a", "b", 0));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hmac_rfc4231),
      cmocka_unit_test(test_hmac_empty_key_and_message),
      cmocka_unit_test(test_sha256),
      cmocka_unit_test(test_hex),
      cmocka_unit_test(test_base64_vectors),
      cmocka_unit_test(test_base64_round_trips),
      cmocka_unit_test(test_base64url_strict),
      cmocka_unit_test(test_base64_strict),
      cmocka_unit_test(test_base64_buffer_limits),
      cmocka_unit_test(test_standard_webhooks_vector),
      cmocka_unit_test(test_random_id),
      cmocka_unit_test(test_uuid_v4),
      cmocka_unit_test(test_random_bytes_vary),
      cmocka_unit_test(test_equal),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
