/* test_jwt.c — JWT verification (HS256/RS256/ES256), claim checks, the
 * principal a token describes, and HS256 signing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/jwt.h"
#include "core/crypto.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOW 1700000000
#define SECRET "0123456789abcdef0123456789abcdef-test-secret"

#define GOOD_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define GOOD_PAYLOAD "{\"sub\":\"u1\",\"exp\":1700000600}"

/* Keys generated once per run; PEM public keys written to temp files. */
static struct {
  EVP_PKEY *rsa, *rsa_other, *ec, *ec_other;
  char dir[64];
  char rsa_pem[128], ec_pem[128], ec384_pem[128], rsa1024_pem[128], garbage_pem[128],
      private_pem[128], missing_pem[128];
  char *rsa_pem_text;
  size_t rsa_pem_len;
} K;

/* ---- helpers ------------------------------------------------------------ */

static int64_t fake_now(void *ud) { return *(const int64_t *)ud; }

static char *b64url(const void *data, size_t len) {
  char *out = malloc(AC_CRYPTO_B64_SIZE(len));
  assert_non_null(out);
  assert_int_equal(ac_crypto_base64url_encode(data, len, out, AC_CRYPTO_B64_SIZE(len), NULL),
                   AC_OK);
  return out;
}

static char *concat3(const char *a, const char *sep, const char *b) {
  size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
  char *out = malloc(n);
  assert_non_null(out);
  snprintf(out, n, "%s%s%s", a, sep, b);
  return out;
}

/* "b64(header).b64(payload)" — the JWS signing input. */
static char *signing_input(const char *header, const char *payload) {
  char *h = b64url(header, strlen(header)), *p = b64url(payload, strlen(payload));
  char *in = concat3(h, ".", p);
  free(h);
  free(p);
  return in;
}

static char *attach(char *input, const unsigned char *sig, size_t sig_len) {
  char *s = b64url(sig, sig_len);
  char *tok = concat3(input, ".", s);
  free(s);
  free(input);
  return tok;
}

static char *sign_hs(const void *key, size_t key_len, const char *header, const char *payload) {
  char *in = signing_input(header, payload);
  unsigned char mac[32];
  assert_int_equal(ac_crypto_hmac_sha256(key, key_len, in, strlen(in), mac), AC_OK);
  return attach(in, mac, sizeof mac);
}

/* Signs an arbitrary signing input with SECRET (takes input). */
static char *sign_input(char *input) {
  unsigned char mac[32];
  assert_int_equal(ac_crypto_hmac_sha256(SECRET, strlen(SECRET), input, strlen(input), mac),
                   AC_OK);
  return attach(input, mac, sizeof mac);
}

enum { SIG_RAW, SIG_DER };

/* RS256 (PKCS#1 v1.5) or ES256 with the signature raw r||s or left DER. */
static char *sign_pkey(EVP_PKEY *key, const char *header, const char *payload, int form) {
  char *in = signing_input(header, payload);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  assert_non_null(ctx);
  assert_int_equal(EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key), 1);
  size_t len = 0;
  assert_int_equal(EVP_DigestSign(ctx, NULL, &len, (unsigned char *)in, strlen(in)), 1);
  unsigned char *sig = malloc(len);
  assert_non_null(sig);
  assert_int_equal(EVP_DigestSign(ctx, sig, &len, (unsigned char *)in, strlen(in)), 1);
  EVP_MD_CTX_free(ctx);
  if (EVP_PKEY_is_a(key, "EC") && form == SIG_RAW) {
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
    assert_non_null(es);
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    unsigned char raw[64];
    assert_int_equal(BN_bn2binpad(r, raw, 32), 32);
    assert_int_equal(BN_bn2binpad(s, raw + 32, 32), 32);
    ECDSA_SIG_free(es);
    free(sig);
    return attach(in, raw, sizeof raw);
  }
  char *tok = attach(in, sig, len);
  free(sig);
  return tok;
}

static ac_jwt_verifier *make_verifier(const char *alg, const char *key_file, int leeway,
                                      const char *iss, const char *aud, int64_t *now) {
  ac_jwt_options o = {.alg = alg,
                      .secret = SECRET,
                      .secret_len = strlen(SECRET),
                      .public_key_file = key_file,
                      .leeway_s = leeway,
                      .issuer = iss,
                      .audience = aud,
                      .now = fake_now,
                      .now_ud = now};
  ac_jwt_verifier *v = NULL;
  ac_err err = {0};
  if (ac_jwt_verifier_new(&o, &v, &err))
    fail_msg("verifier: %s", err.msg);
  return v;
}

/* Asserts a rejection: AC_ERR_DENIED, no claims, a log message that quotes
 * neither the signature nor the payload. */
static void expect_denied_why(const ac_jwt_verifier *v, const char *token, const char *name,
                              const char *why) {
  json_t *claims = (json_t *)&claims; /* must be reset to NULL */
  ac_err err = {0};
  int rc = ac_jwt_verify(v, token, &claims, &err);
  if (rc != AC_ERR_DENIED)
    fail_msg("%s: rc %d (%s), want denied", name, rc, err.msg);
  assert_null(claims);
  assert_non_null(strstr(err.msg, "invalid token"));
  if (why && !strstr(err.msg, why))
    fail_msg("%s: message \"%s\" lacks \"%s\"", name, err.msg, why);
  if (token) {
    const char *d1 = strchr(token, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d2 && strlen(d2 + 1) >= 8)
      assert_null(strstr(err.msg, d2 + 1));
    if (d1 && d2 && d2 - d1 > 8) {
      char *payload = strndup(d1 + 1, (size_t)(d2 - d1 - 1));
      assert_null(strstr(err.msg, payload));
      free(payload);
    }
  }
}

static void expect_denied(const ac_jwt_verifier *v, const char *token, const char *name) {
  expect_denied_why(v, token, name, NULL);
}

static json_t *expect_valid(const ac_jwt_verifier *v, const char *token, const char *name) {
  json_t *claims = NULL;
  ac_err err = {0};
  if (ac_jwt_verify(v, token, &claims, &err))
    fail_msg("%s: %s", name, err.msg);
  assert_true(json_is_object(claims));
  return claims;
}

/* ---- key material ------------------------------------------------------- */

static void write_pubkey(EVP_PKEY *key, const char *path) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  assert_int_equal(PEM_write_PUBKEY(f, key), 1);
  fclose(f);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *buf = malloc(16384);
  assert_non_null(buf);
  *len = fread(buf, 1, 16383, f);
  buf[*len] = '\0';
  fclose(f);
  return buf;
}

static int group_setup(void **state) {
  (void)state;
  snprintf(K.dir, sizeof K.dir, "/tmp/ac-test-jwt-XXXXXX");
  if (!mkdtemp(K.dir))
    return -1;
  snprintf(K.rsa_pem, sizeof K.rsa_pem, "%s/rsa.pem", K.dir);
  snprintf(K.ec_pem, sizeof K.ec_pem, "%s/ec.pem", K.dir);
  snprintf(K.ec384_pem, sizeof K.ec384_pem, "%s/ec384.pem", K.dir);
  snprintf(K.rsa1024_pem, sizeof K.rsa1024_pem, "%s/rsa1024.pem", K.dir);
  snprintf(K.garbage_pem, sizeof K.garbage_pem, "%s/garbage.pem", K.dir);
  snprintf(K.private_pem, sizeof K.private_pem, "%s/private.pem", K.dir);
  snprintf(K.missing_pem, sizeof K.missing_pem, "%s/missing.pem", K.dir);

  K.rsa = EVP_RSA_gen(2048);
  K.rsa_other = EVP_RSA_gen(2048);
  K.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  K.ec_other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  EVP_PKEY *ec384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
  EVP_PKEY *rsa1024 = EVP_RSA_gen(1024);
  if (!K.rsa || !K.rsa_other || !K.ec || !K.ec_other || !ec384 || !rsa1024)
    return -1;
  write_pubkey(K.rsa, K.rsa_pem);
  write_pubkey(K.ec, K.ec_pem);
  write_pubkey(ec384, K.ec384_pem);
  write_pubkey(rsa1024, K.rsa1024_pem);
  EVP_PKEY_free(ec384);
  EVP_PKEY_free(rsa1024);

  FILE *f = fopen(K.garbage_pem, "w");
  fputs("-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n", f);
  fclose(f);
  f = fopen(K.private_pem, "w");
  PEM_write_PrivateKey(f, K.rsa, NULL, NULL, 0, NULL, NULL);
  fclose(f);
  K.rsa_pem_text = slurp(K.rsa_pem, &K.rsa_pem_len);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  EVP_PKEY_free(K.rsa);
  EVP_PKEY_free(K.rsa_other);
  EVP_PKEY_free(K.ec);
  EVP_PKEY_free(K.ec_other);
  free(K.rsa_pem_text);
  const char *files[] = {K.rsa_pem, K.ec_pem, K.ec384_pem, K.rsa1024_pem, K.garbage_pem,
                         K.private_pem};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    unlink(files[i]);
  rmdir(K.dir);
  return 0;
}

/* ---- RFC examples ------------------------------------------------------- */

/* RFC 7515 Appendix A.1: HS256 with a 64-byte key; exp 1300819380. */
static const char *const RFC7515_TOKEN =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const char *const RFC7515_KEY =
    "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";

static ac_jwt_verifier *rfc_verifier(int64_t *now, int leeway) {
  unsigned char key[96];
  size_t key_len = 0;
  ac_err err;
  assert_int_equal(ac_crypto_base64url_decode(RFC7515_KEY, strlen(RFC7515_KEY), key, sizeof key,
                                              &key_len, &err),
                   AC_OK);
  assert_int_equal(key_len, 64);
  ac_jwt_options o = {
      .alg = "HS256", .secret = key, .secret_len = key_len, .leeway_s = leeway,
      .now = fake_now, .now_ud = now};
  ac_jwt_verifier *v = NULL;
  assert_int_equal(ac_jwt_verifier_new(&o, &v, &err), AC_OK);
  return v;
}

static void test_rfc7515_a1(void **state) {
  (void)state;
  int64_t now = 1300819379;
  ac_jwt_verifier *v = rfc_verifier(&now, 0);
  json_t *claims = expect_valid(v, RFC7515_TOKEN, "rfc7515 before exp");
  assert_string_equal(json_string_value(json_object_get(claims, "iss")), "joe");
  assert_true(json_is_true(json_object_get(claims, "http://example.com/is_root")));
  json_decref(claims);

  /* The example has no `sub`, so it never becomes a principal. */
  ac_principal p;
  ac_err err = {0};
  assert_int_equal(ac_jwt_authenticate(v, RFC7515_TOKEN, &p, &err), AC_ERR_DENIED);
  assert_non_null(strstr(err.msg, "sub"));
  assert_null(p.sub);

  now = 1300819380; /* exp itself: no longer valid */
  expect_denied(v, RFC7515_TOKEN, "rfc7515 at exp");
  now = 1700000000;
  expect_denied(v, RFC7515_TOKEN, "rfc7515 long after");
  ac_jwt_verifier_free(v);

  /* With leeway the same instant still passes. */
  now = 1300819380 + 59;
  v = rfc_verifier(&now, 60);
  json_decref(expect_valid(v, RFC7515_TOKEN, "rfc7515 within leeway"));
  ac_jwt_verifier_free(v);
}

static void test_rfc7519_unsecured(void **state) {
  (void)state;
  int64_t now = 1300819379;
  ac_jwt_verifier *v = rfc_verifier(&now, 0);
  /* RFC 7519 §6.1: alg "none", empty signature. */
  expect_denied(v,
                "eyJhbGciOiJub25lIn0"
                ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
                ".",
                "rfc7519 unsecured");
  /* The same claims under alg none with the real HS256 MAC appended. */
  const char *rfc_sig = strrchr(RFC7515_TOKEN, '.');
  char *forged = concat3("eyJhbGciOiJub25lIn0"
                         ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
                         "", rfc_sig);
  expect_denied(v, forged, "alg none with a signature");
  free(forged);
  ac_jwt_verifier_free(v);
}

/* ---- HS256 header and claim table --------------------------------------- */

/* OK: verifies and yields a principal; NO_PRINCIPAL: verifies, but
 * ac_jwt_authenticate refuses it; DENY: ac_jwt_verify refuses it. */
enum { OK, DENY, NO_PRINCIPAL };

typedef struct {
  const char *name;
  const char *header; /* NULL: GOOD_HEADER */
  const char *payload;
  const char *issuer, *audience;
  int expect;
  const char *why; /* DENY: part of the log message */
} claim_case;

#define ISS "https://issuer.example"
#define AUD "agentcore"

/* The clock reads NOW (1700000000); leeway is 60 s. */
static const claim_case claim_cases[] = {
    /* header */
    {"good", NULL, GOOD_PAYLOAD, NULL, NULL, OK, NULL},
    {"alg only", "{\"alg\":\"HS256\"}", GOOD_PAYLOAD, NULL, NULL, OK, NULL},
    {"kid ignored", "{\"alg\":\"HS256\",\"kid\":\"k1\"}", GOOD_PAYLOAD, NULL, NULL, OK, NULL},
    {"escaped alg", "{\"alg\":\"HS\\u0032\\u0035\\u0036\"}", GOOD_PAYLOAD, NULL, NULL, OK, NULL},
    {"alg hs256", "{\"alg\":\"hs256\"}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"alg Hs256", "{\"alg\":\"Hs256\"}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"alg trailing space", "{\"alg\":\"HS256 \"}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"alg leading space", "{\"alg\":\" HS256\"}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"alg none", "{\"alg\":\"none\"}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"alg RS256", "{\"alg\":\"RS256\"}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"alg HS384", "{\"alg\":\"HS384\"}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"alg missing", "{\"typ\":\"JWT\"}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"alg null", "{\"alg\":null}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"alg array", "{\"alg\":[\"HS256\"]}", GOOD_PAYLOAD, NULL, NULL, DENY, "alg is not"},
    {"crit", "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", GOOD_PAYLOAD, NULL, NULL, DENY, "crit"},
    {"crit empty", "{\"alg\":\"HS256\",\"crit\":[]}", GOOD_PAYLOAD, NULL, NULL, DENY, "crit"},
    {"duplicate alg", "{\"alg\":\"none\",\"alg\":\"HS256\"}", GOOD_PAYLOAD, NULL, NULL, DENY, "header has a duplicate member"},
    {"duplicate typ", "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, NULL,
     NULL, DENY, "header has a duplicate member"},
    {"header array", "[\"HS256\"]", GOOD_PAYLOAD, NULL, NULL, DENY, "header is not a JSON object"},
    {"header string", "\"HS256\"", GOOD_PAYLOAD, NULL, NULL, DENY, "header is not valid JSON"},
    {"header broken", "{\"alg\":\"HS256\"", GOOD_PAYLOAD, NULL, NULL, DENY, "header is not valid JSON"},
    /* payload shape */
    {"payload array", NULL, "[1]", NULL, NULL, DENY, "payload is not a JSON object"},
    {"payload number", NULL, "42", NULL, NULL, DENY, "payload is not valid JSON"},
    {"payload broken", NULL, "{\"sub\":\"u1\",", NULL, NULL, DENY, "payload is not valid JSON"},
    {"payload NUL", NULL, "{\"sub\":\"u\\u0000\",\"exp\":1700000600}", NULL, NULL, DENY, "payload is not valid JSON"},
    {"duplicate sub", NULL, "{\"sub\":\"u1\",\"sub\":\"admin\",\"exp\":1700000600}", NULL, NULL,
     DENY, "payload has a duplicate member"},
    {"duplicate exp", NULL, "{\"sub\":\"u1\",\"exp\":1,\"exp\":1700000600}", NULL, NULL, DENY, "payload has a duplicate member"},
    /* exp */
    {"exp missing", NULL, "{\"sub\":\"u1\"}", NULL, NULL, DENY, "exp is missing"},
    {"exp string", NULL, "{\"sub\":\"u1\",\"exp\":\"1700000600\"}", NULL, NULL, DENY, "exp is not a number"},
    {"exp null", NULL, "{\"sub\":\"u1\",\"exp\":null}", NULL, NULL, DENY, "exp is not a number"},
    {"exp real", NULL, "{\"sub\":\"u1\",\"exp\":1700000600.5}", NULL, NULL, OK, NULL},
    {"expired beyond leeway", NULL, "{\"sub\":\"u1\",\"exp\":1699999939}", NULL, NULL, DENY, "expired"},
    {"expired at leeway edge", NULL, "{\"sub\":\"u1\",\"exp\":1699999940}", NULL, NULL, DENY, "expired"},
    {"just expired, in leeway", NULL, "{\"sub\":\"u1\",\"exp\":1699999941}", NULL, NULL, OK, NULL},
    {"expired 30 s, in leeway", NULL, "{\"sub\":\"u1\",\"exp\":1699999970}", NULL, NULL, OK, NULL},
    /* nbf */
    {"nbf past", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"nbf\":1699999000}", NULL, NULL, OK, NULL},
    {"nbf in leeway", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"nbf\":1700000060}", NULL, NULL,
     OK, NULL},
    {"nbf future", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"nbf\":1700000061}", NULL, NULL,
     DENY, "nbf"},
    {"nbf string", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"nbf\":\"0\"}", NULL, NULL, DENY, "nbf is not a number"},
    /* iat */
    {"iat past", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"iat\":1699999000}", NULL, NULL, OK, NULL},
    {"iat in leeway", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"iat\":1700000030}", NULL, NULL,
     OK, NULL},
    {"iat future", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"iat\":1700000061}", NULL, NULL,
     DENY, "iat"},
    {"iat string", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"iat\":\"x\"}", NULL, NULL, DENY, "iat is not a number"},
    /* sub */
    {"sub missing", NULL, "{\"exp\":1700000600}", NULL, NULL, NO_PRINCIPAL, NULL},
    {"sub empty", NULL, "{\"sub\":\"\",\"exp\":1700000600}", NULL, NULL, NO_PRINCIPAL, NULL},
    {"sub number", NULL, "{\"sub\":7,\"exp\":1700000600}", NULL, NULL, DENY, "sub is not a string"},
    /* iss */
    {"iss match", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"iss\":\"" ISS "\"}", ISS, NULL, OK, NULL},
    {"iss mismatch", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"iss\":\"https://evil\"}", ISS,
     NULL, DENY, "issuer"},
    {"iss prefix", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"iss\":\"" ISS "/x\"}", ISS, NULL,
     DENY, "issuer"},
    {"iss missing", NULL, GOOD_PAYLOAD, ISS, NULL, DENY, "issuer"},
    {"iss number", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"iss\":1}", ISS, NULL, DENY, "issuer"},
    {"iss unchecked", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"iss\":\"any\"}", NULL, NULL, OK, NULL},
    /* aud */
    {"aud string", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"aud\":\"" AUD "\"}", NULL, AUD, OK, NULL},
    {"aud array", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"aud\":[\"x\",\"" AUD "\"]}", NULL,
     AUD, OK, NULL},
    {"aud array without", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"aud\":[\"x\",\"y\"]}", NULL,
     AUD, DENY, "audience"},
    {"aud empty array", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"aud\":[]}", NULL, AUD, DENY, "audience"},
    {"aud mismatch", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"aud\":\"agentcore2\"}", NULL, AUD,
     DENY, "audience"},
    {"aud missing", NULL, GOOD_PAYLOAD, NULL, AUD, DENY, "audience"},
    {"aud number", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"aud\":5}", NULL, AUD, DENY, "audience"},
    {"aud unchecked", NULL, "{\"sub\":\"u1\",\"exp\":1700000600,\"aud\":\"x\"}", NULL, NULL, OK, NULL},
    {"iss and aud", NULL,
     "{\"sub\":\"u1\",\"exp\":1700000600,\"iss\":\"" ISS "\",\"aud\":[\"" AUD "\"]}", ISS, AUD,
     OK, NULL},
};

static void test_hs256_claim_table(void **state) {
  (void)state;
  int64_t now = NOW;
  for (size_t i = 0; i < sizeof claim_cases / sizeof claim_cases[0]; i++) {
    const claim_case *c = &claim_cases[i];
    ac_jwt_verifier *v = make_verifier("HS256", NULL, 60, c->issuer, c->audience, &now);
    char *tok = sign_hs(SECRET, strlen(SECRET), c->header ? c->header : GOOD_HEADER, c->payload);
    if (c->expect == DENY) {
      assert_non_null(c->why);
      expect_denied_why(v, tok, c->name, c->why);
    } else {
      json_decref(expect_valid(v, tok, c->name));
      ac_principal p;
      ac_err err = {0};
      int rc = ac_jwt_authenticate(v, tok, &p, &err);
      if (c->expect == OK && rc != AC_OK)
        fail_msg("%s: authenticate: %s", c->name, err.msg);
      if (c->expect == NO_PRINCIPAL && rc != AC_ERR_DENIED)
        fail_msg("%s: authenticate rc %d, want denied", c->name, rc);
      ac_principal_clear(&p);
    }
    free(tok);
    ac_jwt_verifier_free(v);
  }
}

/* ---- token structure ---------------------------------------------------- */

/* Returns a copy of tok with ins inserted at byte offset at. */
static char *insert_at(const char *tok, size_t at, const char *ins) {
  size_t n = strlen(tok), k = strlen(ins);
  char *out = malloc(n + k + 1);
  assert_non_null(out);
  memcpy(out, tok, at);
  memcpy(out + at, ins, k);
  memcpy(out + at + k, tok + at, n - at + 1);
  return out;
}

static void test_structure_refusals(void **state) {
  (void)state;
  int64_t now = NOW;
  ac_jwt_verifier *v = make_verifier("HS256", NULL, 60, NULL, NULL, &now);
  char *tok = sign_hs(SECRET, strlen(SECRET), GOOD_HEADER, GOOD_PAYLOAD);
  json_decref(expect_valid(v, tok, "baseline"));
  size_t len = strlen(tok);
  size_t d1 = (size_t)(strchr(tok, '.') - tok);
  size_t d2 = (size_t)(strrchr(tok, '.') - tok);

  static const struct {
    const char *name;
    int where; /* 0: after header, 1: after payload, 2: end, 3: start, 4: mid-payload */
    const char *ins;
  } muts[] = {
      {"padding in header", 0, "="},      {"padding in payload", 1, "="},
      {"padding in signature", 2, "="},   {"double padding in signature", 2, "=="},
      {"leading space", 3, " "},          {"trailing space", 2, " "},
      {"trailing newline", 2, "\n"},      {"trailing CRLF", 2, "\r\n"},
      {"tab in payload", 4, "\t"},        {"space in payload", 4, " "},
      {"fourth part", 2, ".AAAA"},        {"empty fourth part", 2, "."},
      {"extra dot", 0, "."},              {"plus in payload", 4, "+"},
  };
  for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
    size_t at = muts[i].where == 0   ? d1
                : muts[i].where == 1 ? d2
                : muts[i].where == 2 ? len
                : muts[i].where == 3 ? 0
                                     : d1 + 5;
    char *bad = insert_at(tok, at, muts[i].ins);
    expect_denied(v, bad, muts[i].name);
    free(bad);
  }

  /* The same kinds of damage, but signed as they stand: only the strict
   * decoder stands between these and acceptance. */
  static const struct {
    const char *name;
    int part; /* 0 header, 1 payload */
    const char *ins;
    const char *why;
  } resigned[] = {
      {"signed padding in header", 0, "=", "header: base64url: padding"},
      {"signed padding in payload", 1, "=", "payload: base64url: padding"},
      {"signed double padding in payload", 1, "==", "payload: base64url: padding"},
      {"signed space in payload", 1, " ", "payload: base64url: invalid character"},
      {"signed newline in header", 0, "\n", "header: base64url: invalid character"},
      {"signed plus in payload", 1, "+", "payload: base64url: invalid character"},
      {"signed slash in header", 0, "/", "header: base64url: invalid character"},
      {"signed impossible length", 1, "AA", "payload: base64url: impossible length"},
  };
  for (size_t i = 0; i < sizeof resigned / sizeof resigned[0]; i++) {
    char *bad = insert_at(tok, resigned[i].part ? d2 : d1, resigned[i].ins);
    bad[strrchr(bad, '.') - bad] = '\0';
    char *signed_bad = sign_input(bad);
    expect_denied_why(v, signed_bad, resigned[i].name, resigned[i].why);
    free(signed_bad);
  }
  /* Non-canonical trailing bits: a lax decoder maps "...f" and "...g" to
   * the same bytes, so two encodings would carry one signature's claims. */
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  char *in29 = signing_input(GOOD_HEADER, GOOD_PAYLOAD); /* 29 bytes: 39 chars */
  size_t in_len = strlen(in29);
  assert_int_equal((in_len - d1 - 1) % 4, 3);
  char *canonical = sign_input(strdup(in29));
  json_decref(expect_valid(v, canonical, "canonical payload"));
  free(canonical);
  size_t val = (size_t)(strchr(alphabet, in29[in_len - 1]) - alphabet);
  in29[in_len - 1] = alphabet[val ^ 1]; /* sets a bit no byte uses */
  char *noncanonical = sign_input(in29);
  expect_denied_why(v, noncanonical, "non-canonical payload", "non-canonical");
  free(noncanonical);

  /* Removing parts. */
  char *two = strndup(tok, d2);
  expect_denied(v, two, "two parts");
  char *unsigned_tok = strndup(tok, d2 + 1);
  expect_denied(v, unsigned_tok, "empty signature");
  char *no_header = strdup(tok + d1);
  expect_denied(v, no_header, "empty header");
  char *truncated = strndup(tok, len - 1);
  expect_denied(v, truncated, "truncated signature");
  free(two);
  free(unsigned_tok);
  free(no_header);
  free(truncated);
  expect_denied(v, "", "empty token");
  expect_denied(v, "..", "only dots");
  expect_denied(v, NULL, "NULL token");
  expect_denied(v, "not a token", "garbage");

  /* Flipped signature bits, one byte at a time. */
  unsigned char sig[64];
  size_t sig_len = 0;
  ac_err err;
  assert_int_equal(ac_crypto_base64url_decode(tok + d2 + 1, len - d2 - 1, sig, sizeof sig,
                                              &sig_len, &err),
                   AC_OK);
  assert_int_equal(sig_len, 32);
  for (size_t b = 0; b < sig_len; b += 7) {
    sig[b] ^= 0x01;
    char *flipped = attach(strndup(tok, d2), sig, sig_len);
    expect_denied(v, flipped, "flipped signature byte");
    free(flipped);
    sig[b] ^= 0x01;
  }
  /* Payload swapped under the original signature. */
  char *in = signing_input(GOOD_HEADER, "{\"sub\":\"admin\",\"exp\":1700000600}");
  char *swapped = attach(in, sig, sig_len);
  expect_denied(v, swapped, "tampered payload");
  free(swapped);

  /* Signed with a different secret. */
  char *other = sign_hs(SECRET "x", strlen(SECRET) + 1, GOOD_HEADER, GOOD_PAYLOAD);
  expect_denied(v, other, "other secret");
  free(other);
  free(tok);
  ac_jwt_verifier_free(v);
}

/* The 8 KiB cap: the longest token under it passes, one byte class over fails. */
static void test_size_cap(void **state) {
  (void)state;
  int64_t now = NOW;
  ac_jwt_verifier *v = make_verifier("HS256", NULL, 60, NULL, NULL, &now);
  char *pad = malloc(8192);
  assert_non_null(pad);
  char payload[9000];
  char *last_ok = NULL;
  char *over = NULL;
  for (size_t n = 5800; n < 6300 && !over; n++) {
    memset(pad, 'a', n);
    pad[n] = '\0';
    snprintf(payload, sizeof payload, "{\"sub\":\"u1\",\"exp\":1700000600,\"pad\":\"%s\"}", pad);
    char *tok = sign_hs(SECRET, strlen(SECRET), GOOD_HEADER, payload);
    if (strlen(tok) <= AC_JWT_MAX_TOKEN) {
      free(last_ok);
      last_ok = tok;
    } else {
      over = tok;
    }
  }
  assert_non_null(last_ok);
  assert_non_null(over);
  assert_true(strlen(last_ok) > AC_JWT_MAX_TOKEN - 8);
  json_decref(expect_valid(v, last_ok, "just under 8 KiB"));
  expect_denied(v, over, "over 8 KiB");
  ac_err err = {0};
  assert_int_equal(ac_jwt_verify(v, over, NULL, &err), AC_ERR_DENIED);
  assert_non_null(strstr(err.msg, "longer than 8192"));

  /* The signer refuses to produce what no verifier would accept. */
  json_t *claims = json_pack("{s:s, s:i, s:s}", "sub", "u1", "exp", 1700000600, "pad", pad);
  char *signed_tok = (char *)"untouched";
  assert_int_equal(ac_jwt_sign_hs256(SECRET, strlen(SECRET), claims, &signed_tok, &err),
                   AC_ERR_LIMIT);
  assert_null(signed_tok);
  json_decref(claims);
  free(last_ok);
  free(over);
  free(pad);
  ac_jwt_verifier_free(v);
}

/* ---- RS256 / ES256 ------------------------------------------------------ */

#define RS_HEADER "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"
#define ES_HEADER "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"

static void test_algorithm_confusion(void **state) {
  (void)state;
  int64_t now = NOW;
  ac_jwt_verifier *v = make_verifier("RS256", K.rsa_pem, 60, NULL, NULL, &now);
  /* The classic attack: HMAC keyed with the public key's PEM text. */
  char *tok = sign_hs(K.rsa_pem_text, K.rsa_pem_len, GOOD_HEADER, GOOD_PAYLOAD);
  expect_denied(v, tok, "HS256 keyed with RSA PEM");
  free(tok);
  tok = sign_hs(K.rsa_pem_text, K.rsa_pem_len, RS_HEADER, GOOD_PAYLOAD);
  expect_denied(v, tok, "RS256 header, HMAC signature");
  free(tok);
  ac_jwt_verifier_free(v);

  /* And an HS256 verifier never accepts an RS256 token. */
  v = make_verifier("HS256", NULL, 60, NULL, NULL, &now);
  tok = sign_pkey(K.rsa, RS_HEADER, GOOD_PAYLOAD, SIG_RAW);
  expect_denied(v, tok, "RS256 token to HS256 verifier");
  free(tok);
  ac_jwt_verifier_free(v);
}

/* Flips one bit in the decoded signature of tok. */
static char *flip_sig(const char *tok, size_t byte) {
  const char *d2 = strrchr(tok, '.');
  unsigned char sig[1024];
  size_t n = 0;
  ac_err err;
  assert_int_equal(
      ac_crypto_base64url_decode(d2 + 1, strlen(d2 + 1), sig, sizeof sig, &n, &err), AC_OK);
  assert_true(byte < n);
  sig[byte] ^= 0x80;
  return attach(strndup(tok, (size_t)(d2 - tok)), sig, n);
}

/* Replaces the signature of tok with n bytes of sig. */
static char *with_sig(const char *tok, const unsigned char *sig, size_t n) {
  const char *d2 = strrchr(tok, '.');
  return attach(strndup(tok, (size_t)(d2 - tok)), sig, n);
}

static void test_rs256(void **state) {
  (void)state;
  int64_t now = NOW;
  ac_jwt_verifier *v = make_verifier("RS256", K.rsa_pem, 60, NULL, NULL, &now);
  char *good = sign_pkey(K.rsa, RS_HEADER, GOOD_PAYLOAD, SIG_RAW);
  json_t *claims = expect_valid(v, good, "rs256 valid");
  assert_string_equal(json_string_value(json_object_get(claims, "sub")), "u1");
  json_decref(claims);

  char *bad[6];
  bad[0] = flip_sig(good, 0);
  bad[1] = flip_sig(good, 255);
  bad[2] = sign_pkey(K.rsa_other, RS_HEADER, GOOD_PAYLOAD, SIG_RAW);
  bad[3] = sign_pkey(K.rsa, "{\"alg\":\"ES256\"}", GOOD_PAYLOAD, SIG_RAW);
  bad[4] = sign_pkey(K.rsa, RS_HEADER, "{\"sub\":\"u1\",\"exp\":1699999000}", SIG_RAW);
  char *in = signing_input(RS_HEADER, "{\"sub\":\"admin\",\"exp\":1700000600}");
  const char *sig_b64 = strrchr(good, '.');
  bad[5] = concat3(in, "", sig_b64); /* payload swapped under a valid signature */
  free(in);
  static const char *const names[] = {"rs256 flipped first byte", "rs256 flipped last byte",
                                      "rs256 other key",          "rs256 key, ES256 header",
                                      "rs256 expired",            "rs256 tampered payload"};
  for (size_t i = 0; i < 6; i++) {
    expect_denied(v, bad[i], names[i]);
    free(bad[i]);
  }
  free(good);
  ac_jwt_verifier_free(v);
}

static void test_es256(void **state) {
  (void)state;
  int64_t now = NOW;
  ac_jwt_verifier *v = make_verifier("ES256", K.ec_pem, 60, NULL, NULL, &now);
  char *good = sign_pkey(K.ec, ES_HEADER, GOOD_PAYLOAD, SIG_RAW);
  json_decref(expect_valid(v, good, "es256 valid"));
  /* ECDSA is randomised: a second signature of the same input verifies too. */
  char *again = sign_pkey(K.ec, ES_HEADER, GOOD_PAYLOAD, SIG_RAW);
  json_decref(expect_valid(v, again, "es256 valid again"));
  free(again);

  /* Raw signature, for the length cases. */
  const char *d2 = strrchr(good, '.');
  unsigned char raw[80];
  size_t raw_len = 0;
  ac_err err;
  assert_int_equal(
      ac_crypto_base64url_decode(d2 + 1, strlen(d2 + 1), raw, sizeof raw, &raw_len, &err), AC_OK);
  assert_int_equal(raw_len, 64);
  unsigned char longer[65];
  memcpy(longer, raw, 64);
  longer[64] = 0;
  unsigned char zeros[64] = {0};

  char *in = signing_input(ES_HEADER, "{\"sub\":\"admin\",\"exp\":1700000600}");
  char *bad[10];
  bad[0] = sign_pkey(K.ec, ES_HEADER, GOOD_PAYLOAD, SIG_DER);
  bad[1] = flip_sig(good, 0);
  bad[2] = flip_sig(good, 40);
  bad[3] = sign_pkey(K.ec_other, ES_HEADER, GOOD_PAYLOAD, SIG_RAW);
  bad[4] = with_sig(good, raw, 63);
  bad[5] = with_sig(good, longer, 65);
  bad[6] = with_sig(good, zeros, 64);
  bad[7] = concat3(in, "", d2);
  bad[8] = sign_pkey(K.ec, RS_HEADER, GOOD_PAYLOAD, SIG_RAW);
  bad[9] = sign_pkey(K.ec, ES_HEADER, "{\"sub\":\"u1\",\"exp\":1700000600,\"nbf\":1700009999}",
                     SIG_RAW);
  free(in);
  static const char *const names[] = {
      "es256 DER signature", "es256 flipped r",       "es256 flipped s",
      "es256 other key",     "es256 63-byte sig",     "es256 65-byte sig",
      "es256 zero sig",      "es256 tampered payload", "es256 key, RS256 header",
      "es256 nbf future"};
  for (size_t i = 0; i < 10; i++) {
    expect_denied(v, bad[i], names[i]);
    free(bad[i]);
  }
  free(good);
  ac_jwt_verifier_free(v);
}

/* ---- verifier construction ---------------------------------------------- */

enum { KF_NONE, KF_EMPTY, KF_RSA, KF_EC, KF_EC384, KF_RSA1024, KF_GARBAGE, KF_PRIVATE,
       KF_MISSING };

static const char *key_file(int kf) {
  switch (kf) {
  case KF_EMPTY: return "";
  case KF_RSA: return K.rsa_pem;
  case KF_EC: return K.ec_pem;
  case KF_EC384: return K.ec384_pem;
  case KF_RSA1024: return K.rsa1024_pem;
  case KF_GARBAGE: return K.garbage_pem;
  case KF_PRIVATE: return K.private_pem;
  case KF_MISSING: return K.missing_pem;
  default: return NULL;
  }
}

static void test_verifier_creation(void **state) {
  (void)state;
  static const char s31[] = "0123456789abcdef0123456789abcde";
  static const char s32[] = "0123456789abcdef0123456789abcdef";
  static const struct {
    const char *name, *alg, *secret;
    int key;
    int leeway;
    const char *var; /* NULL: creation succeeds */
  } cases[] = {
      {"hs256 31-byte secret", "HS256", s31, KF_NONE, 60, "AGENTCORE_JWT_SECRET"},
      {"hs256 32-byte secret", "HS256", s32, KF_NONE, 60, NULL},
      {"hs256 empty secret", "HS256", "", KF_NONE, 60, "AGENTCORE_JWT_SECRET"},
      {"hs256 no secret", "HS256", NULL, KF_NONE, 60, "AGENTCORE_JWT_SECRET"},
      {"alg lower case", "hs256", s32, KF_NONE, 60, "AGENTCORE_JWT_ALG"},
      {"alg none", "none", s32, KF_NONE, 60, "AGENTCORE_JWT_ALG"},
      {"alg HS512", "HS512", s32, KF_NONE, 60, "AGENTCORE_JWT_ALG"},
      {"alg NULL", NULL, s32, KF_NONE, 60, "AGENTCORE_JWT_ALG"},
      {"negative leeway", "HS256", s32, KF_NONE, -1, "AGENTCORE_JWT_LEEWAY_S"},
      {"rs256 ok", "RS256", NULL, KF_RSA, 0, NULL},
      {"rs256 no file", "RS256", NULL, KF_NONE, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
      {"rs256 empty path", "RS256", NULL, KF_EMPTY, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
      {"rs256 missing file", "RS256", NULL, KF_MISSING, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
      {"rs256 garbage", "RS256", NULL, KF_GARBAGE, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
      {"rs256 private key", "RS256", NULL, KF_PRIVATE, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
      {"rs256 EC key", "RS256", NULL, KF_EC, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
      {"rs256 1024-bit key", "RS256", NULL, KF_RSA1024, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
      {"es256 ok", "ES256", NULL, KF_EC, 0, NULL},
      {"es256 RSA key", "ES256", NULL, KF_RSA, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
      {"es256 P-384 key", "ES256", NULL, KF_EC384, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
      {"es256 no file", "ES256", NULL, KF_NONE, 0, "AGENTCORE_JWT_PUBLIC_KEY_FILE"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ac_jwt_options o = {.alg = cases[i].alg,
                        .secret = cases[i].secret,
                        .secret_len = cases[i].secret ? strlen(cases[i].secret) : 0,
                        .public_key_file = key_file(cases[i].key),
                        .leeway_s = cases[i].leeway};
    ac_jwt_verifier *v = (ac_jwt_verifier *)&o;
    ac_err err = {0};
    int rc = ac_jwt_verifier_new(&o, &v, &err);
    if (cases[i].var == NULL) {
      if (rc != AC_OK)
        fail_msg("%s: %s", cases[i].name, err.msg);
      assert_non_null(v);
    } else {
      if (rc != AC_ERR_INVALID)
        fail_msg("%s: rc %d, want invalid", cases[i].name, rc);
      assert_null(v);
      if (!strstr(err.msg, cases[i].var))
        fail_msg("%s: message \"%s\" does not name %s", cases[i].name, err.msg, cases[i].var);
      assert_null(strchr(err.msg, '\n'));
    }
    ac_jwt_verifier_free(v);
  }
  ac_jwt_verifier_free(NULL);
}

static void test_verifier_from_config(void **state) {
  (void)state;
  ac_config cfg;
  ac_config_defaults(&cfg);
  ac_jwt_verifier *v = NULL;
  ac_err err = {0};
  /* Default alg is HS256 and no secret is set. */
  assert_int_equal(ac_jwt_verifier_from_config(&cfg, &v, &err), AC_ERR_INVALID);
  assert_non_null(strstr(err.msg, "AGENTCORE_JWT_SECRET"));

  snprintf(cfg.jwt_secret, sizeof cfg.jwt_secret, "%s", SECRET);
  snprintf(cfg.jwt_issuer, sizeof cfg.jwt_issuer, "%s", ISS);
  assert_int_equal(ac_jwt_verifier_from_config(&cfg, &v, &err), AC_OK);
  /* The real clock: a token valid for the next hour. */
  long long t = (long long)time(NULL);
  char payload[256];
  snprintf(payload, sizeof payload, "{\"sub\":\"u1\",\"exp\":%lld,\"iat\":%lld,\"iss\":\"%s\"}",
           t + 3600, t, ISS);
  char *tok = sign_hs(SECRET, strlen(SECRET), GOOD_HEADER, payload);
  json_decref(expect_valid(v, tok, "from config"));
  free(tok);
  /* Issuer configured, token without it. */
  snprintf(payload, sizeof payload, "{\"sub\":\"u1\",\"exp\":%lld}", t + 3600);
  tok = sign_hs(SECRET, strlen(SECRET), GOOD_HEADER, payload);
  expect_denied(v, tok, "from config, no iss");
  free(tok);
  ac_jwt_verifier_free(v);

  snprintf(cfg.jwt_alg, sizeof cfg.jwt_alg, "ES256");
  snprintf(cfg.jwt_public_key_file, sizeof cfg.jwt_public_key_file, "%s", K.rsa_pem);
  assert_int_equal(ac_jwt_verifier_from_config(&cfg, &v, &err), AC_ERR_INVALID);
  assert_non_null(strstr(err.msg, "AGENTCORE_JWT_PUBLIC_KEY_FILE"));
}

/* ---- principal ---------------------------------------------------------- */

static void test_principal_table(void **state) {
  (void)state;
  static const struct {
    const char *claims;
    int ok;
    unsigned perms;
    bool global;
    const char *depts; /* comma-joined */
  } cases[] = {
      {"{\"sub\":\"u1\"}", 1, 0, false, ""},
      {"{\"sub\":\"u1\",\"permissions\":[\"canManagePlugins\",\"canManageNamespaces\","
       "\"canEmitEvents\",\"canQueryPlugins\"]}",
       1, AC_PERM_MANAGE_PLUGINS | AC_PERM_MANAGE_NAMESPACES | AC_PERM_EMIT_EVENTS |
              AC_PERM_QUERY_PLUGINS,
       false, ""},
      {"{\"sub\":\"u1\",\"permissions\":[\"canEmitEvents\",\"canFly\",\"canemitevents\"]}", 1,
       AC_PERM_EMIT_EVENTS, false, ""},
      {"{\"sub\":\"u1\",\"permissions\":[\"canQueryPlugins\",\"canQueryPlugins\"]}", 1,
       AC_PERM_QUERY_PLUGINS, false, ""},
      {"{\"sub\":\"u1\",\"permissions\":[]}", 1, 0, false, ""},
      {"{\"sub\":\"u1\",\"permissions\":\"canEmitEvents\"}", 0, 0, false, ""},
      {"{\"sub\":\"u1\",\"permissions\":[1]}", 0, 0, false, ""},
      {"{\"sub\":\"u1\",\"global\":true}", 1, 0, true, ""},
      {"{\"sub\":\"u1\",\"global\":false}", 1, 0, false, ""},
      {"{\"sub\":\"u1\",\"global\":\"true\"}", 0, 0, false, ""},
      {"{\"sub\":\"u1\",\"global\":1}", 0, 0, false, ""},
      {"{\"sub\":\"u1\",\"departmentIds\":[\"d1\",\"d2\"]}", 1, 0, false, "d1,d2"},
      {"{\"sub\":\"u1\",\"departmentIds\":[]}", 1, 0, false, ""},
      {"{\"sub\":\"u1\",\"departmentIds\":\"d1\"}", 0, 0, false, ""},
      {"{\"sub\":\"u1\",\"departmentIds\":[\"d1\",2]}", 0, 0, false, ""},
      {"{\"sub\":\"\"}", 0, 0, false, ""},
      {"{\"sub\":null}", 0, 0, false, ""},
      {"{\"permissions\":[\"canEmitEvents\"]}", 0, 0, false, ""},
      {"[]", 0, 0, false, ""},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    json_error_t jerr;
    json_t *claims = json_loads(cases[i].claims, JSON_DECODE_ANY, &jerr);
    assert_non_null(claims);
    ac_principal p;
    ac_err err = {0};
    int rc = ac_jwt_principal(claims, &p, &err);
    json_decref(claims);
    if (!cases[i].ok) {
      if (rc != AC_ERR_DENIED)
        fail_msg("case %zu (%s): rc %d, want denied", i, cases[i].claims, rc);
      assert_null(p.sub);
      assert_null(p.department_ids);
      continue;
    }
    if (rc)
      fail_msg("case %zu (%s): %s", i, cases[i].claims, err.msg);
    assert_string_equal(p.sub, "u1");
    assert_int_equal(p.permissions, cases[i].perms);
    assert_int_equal(p.global, cases[i].global);
    char joined[256] = "";
    size_t off = 0;
    for (size_t k = 0; k < p.department_count; k++)
      off += (size_t)snprintf(joined + off, sizeof joined - off, "%s%s", k ? "," : "",
                              p.department_ids[k]);
    assert_string_equal(joined, cases[i].depts);
    ac_principal_clear(&p);
    assert_null(p.sub);
    assert_int_equal(p.department_count, 0);
  }
  ac_principal_clear(NULL);
}

static void test_principal_department_cap(void **state) {
  (void)state;
  for (int n = AC_JWT_MAX_DEPARTMENTS; n <= AC_JWT_MAX_DEPARTMENTS + 1; n++) {
    json_t *depts = json_array();
    for (int i = 0; i < n; i++) {
      char id[16];
      snprintf(id, sizeof id, "d%d", i);
      json_array_append_new(depts, json_string(id));
    }
    json_t *claims = json_pack("{s:s, s:o}", "sub", "u1", "departmentIds", depts);
    ac_principal p;
    ac_err err = {0};
    int rc = ac_jwt_principal(claims, &p, &err);
    if (n <= AC_JWT_MAX_DEPARTMENTS) {
      assert_int_equal(rc, AC_OK);
      assert_int_equal(p.department_count, (size_t)n);
      assert_string_equal(p.department_ids[n - 1], "d999");
    } else {
      assert_int_equal(rc, AC_ERR_DENIED);
      assert_non_null(strstr(err.msg, "departmentIds"));
    }
    ac_principal_clear(&p);
    json_decref(claims);
  }
}

static void test_permission_bits(void **state) {
  (void)state;
  assert_int_equal(ac_jwt_permission_bit("canManagePlugins"), AC_PERM_MANAGE_PLUGINS);
  assert_int_equal(ac_jwt_permission_bit("canManageNamespaces"), AC_PERM_MANAGE_NAMESPACES);
  assert_int_equal(ac_jwt_permission_bit("canEmitEvents"), AC_PERM_EMIT_EVENTS);
  assert_int_equal(ac_jwt_permission_bit("canQueryPlugins"), AC_PERM_QUERY_PLUGINS);
  assert_int_equal(ac_jwt_permission_bit("canmanageplugins"), 0);
  assert_int_equal(ac_jwt_permission_bit(""), 0);
  assert_int_equal(ac_jwt_permission_bit(NULL), 0);
}

/* ---- signing and the whole path ----------------------------------------- */

/* A token verified once is answered from the verifier's cache, but its
 * time window is checked on every use: it is refused once expired, and a
 * token not yet valid is refused until its nbf. A token that differs in one
 * byte of its signature is never taken for the cached one. */
static void test_verified_cache_keeps_time_rules(void **state) {
  (void)state;
  int64_t now = NOW;
  ac_jwt_verifier *v = make_verifier("HS256", NULL, 0, NULL, NULL, &now);
  json_t *claims = json_pack("{s:s, s:I, s:I, s:[s]}", "sub", "cached", "exp",
                             (json_int_t)(NOW + 100), "nbf", (json_int_t)(NOW + 10),
                             "permissions", "canQueryPlugins");
  char *tok = NULL;
  ac_err err = {0};
  assert_int_equal(ac_jwt_sign_hs256(SECRET, strlen(SECRET), claims, &tok, &err), AC_OK);
  ac_principal p;
  assert_int_equal(ac_jwt_authenticate(v, tok, &p, &err), AC_ERR_DENIED);
  assert_non_null(strstr(err.msg, "not yet valid"));
  now = NOW + 10;
  for (int i = 0; i < 3; i++) { /* the first verifies, the others hit the cache */
    assert_int_equal(ac_jwt_authenticate(v, tok, &p, &err), AC_OK);
    assert_string_equal(p.sub, "cached");
    assert_int_equal(p.permissions, AC_PERM_QUERY_PLUGINS);
    ac_principal_clear(&p);
  }
  char *forged = strdup(tok);
  size_t n = strlen(forged);
  forged[n - 2] = forged[n - 2] == 'A' ? 'B' : 'A';
  assert_int_equal(ac_jwt_authenticate(v, forged, &p, &err), AC_ERR_DENIED);
  now = NOW + 100;
  assert_int_equal(ac_jwt_authenticate(v, tok, &p, &err), AC_ERR_DENIED);
  assert_non_null(strstr(err.msg, "expired"));
  now = NOW + 50; /* still cached, still valid */
  assert_int_equal(ac_jwt_authenticate(v, tok, &p, &err), AC_OK);
  ac_principal_clear(&p);
  free(forged);
  free(tok);
  json_decref(claims);
  ac_jwt_verifier_free(v);
}

static void test_sign_and_authenticate(void **state) {
  (void)state;
  int64_t now = NOW;
  ac_jwt_verifier *v = make_verifier("HS256", NULL, 60, ISS, AUD, &now);
  json_t *claims = json_pack("{s:s, s:i, s:i, s:s, s:s, s:[s,s], s:b, s:[s]}", "sub", "alice",
                             "iat", NOW, "exp", NOW + 3600, "iss", ISS, "aud", AUD,
                             "permissions", "canManagePlugins", "canQueryPlugins", "global", 1,
                             "departmentIds", "dept-a");
  assert_non_null(claims);
  char *tok = NULL;
  ac_err err = {0};
  assert_int_equal(ac_jwt_sign_hs256(SECRET, strlen(SECRET), claims, &tok, &err), AC_OK);
  assert_non_null(tok);
  assert_null(strchr(tok, '='));

  ac_principal p;
  assert_int_equal(ac_jwt_authenticate(v, tok, &p, &err), AC_OK);
  assert_string_equal(p.sub, "alice");
  assert_int_equal(p.permissions, AC_PERM_MANAGE_PLUGINS | AC_PERM_QUERY_PLUGINS);
  assert_true(p.global);
  assert_int_equal(p.department_count, 1);
  assert_string_equal(p.department_ids[0], "dept-a");
  ac_principal_clear(&p);

  /* The header the signer writes. */
  char header[64];
  size_t hn = 0;
  const char *dot = strchr(tok, '.');
  assert_int_equal(ac_crypto_base64url_decode(tok, (size_t)(dot - tok), (unsigned char *)header,
                                              sizeof header - 1, &hn, &err),
                   AC_OK);
  header[hn] = '\0';
  assert_string_equal(header, GOOD_HEADER);
  free(tok);

  /* Short secrets and non-objects are refused. */
  tok = (char *)"untouched";
  assert_int_equal(ac_jwt_sign_hs256("short", 5, claims, &tok, &err), AC_ERR_INVALID);
  assert_non_null(strstr(err.msg, "AGENTCORE_JWT_SECRET"));
  assert_null(tok);
  json_t *arr = json_array();
  assert_int_equal(ac_jwt_sign_hs256(SECRET, strlen(SECRET), arr, &tok, &err), AC_ERR_INVALID);
  json_decref(arr);
  json_decref(claims);

  /* Time moves on: the same token expires once the leeway is spent. */
  claims = json_pack("{s:s,s:i,s:s,s:s}", "sub", "bob", "exp", NOW + 10, "iss", ISS, "aud", AUD);
  assert_int_equal(ac_jwt_sign_hs256(SECRET, strlen(SECRET), claims, &tok, &err), AC_OK);
  json_decref(claims);
  now = NOW + 69;
  assert_int_equal(ac_jwt_authenticate(v, tok, &p, &err), AC_OK);
  ac_principal_clear(&p);
  now = NOW + 70;
  assert_int_equal(ac_jwt_authenticate(v, tok, &p, &err), AC_ERR_DENIED);
  assert_non_null(strstr(err.msg, "expired"));
  free(tok);
  ac_jwt_verifier_free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc7515_a1),
      cmocka_unit_test(test_rfc7519_unsecured),
      cmocka_unit_test(test_hs256_claim_table),
      cmocka_unit_test(test_structure_refusals),
      cmocka_unit_test(test_size_cap),
      cmocka_unit_test(test_algorithm_confusion),
      cmocka_unit_test(test_rs256),
      cmocka_unit_test(test_es256),
      cmocka_unit_test(test_verifier_creation),
      cmocka_unit_test(test_verifier_from_config),
      cmocka_unit_test(test_principal_table),
      cmocka_unit_test(test_principal_department_cap),
      cmocka_unit_test(test_permission_bits),
      cmocka_unit_test(test_sign_and_authenticate),
      cmocka_unit_test(test_verified_cache_keeps_time_rules),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
