/* jwt.c — compact JWS verification on OpenSSL and jansson, claim checks,
 * principal extraction and HS256 signing for dev tokens. */
#include "auth/jwt.h"
#include "core/buf.h"
#include "core/crypto.h"
#include "core/hash.h"

#define AC_JWT_SUB_MAX 256 /* characters of the sub claim */

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

enum { ALG_HS256, ALG_RS256, ALG_ES256 };

#define ES256_SIG_LEN 64
#define RSA_MIN_BITS 2048
#define LEEWAY_MAX 86400
/* Decoded size of the largest part an 8 KiB token can hold. */
#define PART_MAX AC_CRYPTO_B64_DECODED_SIZE(AC_JWT_MAX_TOKEN)

struct ac_jwt_verifier {
  int alg;
  const char *alg_name; /* static string, compared exactly with the header */
  unsigned char *secret;
  size_t secret_len;
  EVP_PKEY *pkey;
  int leeway_s;
  char *issuer;   /* NULL: not checked */
  char *audience; /* NULL: not checked */
  int64_t (*now)(void *ud);
  void *now_ud;
  /* tokens already verified: the signature, header and static claims of a
   * token never change, so only its time window is checked again */
  pthread_mutex_t cache_lock;
  struct verified *cache;
};

#define CACHE_SLOTS 1024

/* A verified token and what it stands for, while its time window holds. */
typedef struct verified {
  uint64_t hash;
  char *token; /* NULL: empty slot */
  size_t len;
  double valid_from, valid_until; /* now must be >= from and < until */
  ac_principal who;
} verified;

static int64_t real_now(void *ud) {
  (void)ud;
  return (int64_t)time(NULL);
}

/* ---- verifier construction -------------------------------------------- */

static int parse_alg(const char *alg, int *out, const char **name) {
  static const char *const names[] = {"HS256", "RS256", "ES256"};
  for (int i = 0; i < 3; i++) {
    if (alg && strcmp(alg, names[i]) == 0) {
      *out = i;
      *name = names[i];
      return 1;
    }
  }
  return 0;
}

/* Loads the PEM public key and checks it fits the algorithm, so a wrong key
 * stops startup instead of failing every request. */
static int load_public_key(const char *path, int alg, EVP_PKEY **out, ac_err *err) {
  const char *var = "AGENTCORE_JWT_PUBLIC_KEY_FILE";
  const char *alg_name = alg == ALG_RS256 ? "RS256" : "ES256";
  if (!path || !*path)
    return ac_err_set(err, AC_ERR_INVALID, "%s is not set (needed for %s)", var, alg_name);
  FILE *f = fopen(path, "r");
  if (!f)
    return ac_err_set(err, AC_ERR_INVALID, "%s: cannot read %s: %s", var, path, strerror(errno));
  EVP_PKEY *pkey = PEM_read_PUBKEY(f, NULL, NULL, NULL);
  fclose(f);
  if (!pkey) {
    ERR_clear_error();
    return ac_err_set(err, AC_ERR_INVALID, "%s: %s is not a PEM public key", var, path);
  }
  if (alg == ALG_RS256) {
    if (!EVP_PKEY_is_a(pkey, "RSA")) {
      ac_err_set(err, AC_ERR_INVALID, "%s: %s holds a %s key, RS256 needs an RSA key", var,
                 path, EVP_PKEY_get0_type_name(pkey));
      EVP_PKEY_free(pkey);
      return AC_ERR_INVALID;
    }
    if (EVP_PKEY_get_bits(pkey) < RSA_MIN_BITS) {
      ac_err_set(err, AC_ERR_INVALID, "%s: %s holds a %d-bit RSA key, at least %d needed", var,
                 path, EVP_PKEY_get_bits(pkey), RSA_MIN_BITS);
      EVP_PKEY_free(pkey);
      return AC_ERR_INVALID;
    }
  } else {
    char group[64] = "";
    size_t glen = 0;
    if (!EVP_PKEY_is_a(pkey, "EC") ||
        !EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) ||
        (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)) {
      ERR_clear_error();
      ac_err_set(err, AC_ERR_INVALID, "%s: %s holds a %s key, ES256 needs an EC P-256 key", var,
                 path, EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
      EVP_PKEY_free(pkey);
      return AC_ERR_INVALID;
    }
  }
  *out = pkey;
  return AC_OK;
}

int ac_jwt_verifier_new(const ac_jwt_options *opt, ac_jwt_verifier **out, ac_err *err) {
  if (!opt || !out)
    return ac_err_set(err, AC_ERR_INVALID, "jwt: no options");
  *out = NULL;
  int alg;
  const char *alg_name;
  if (!parse_alg(opt->alg, &alg, &alg_name))
    return ac_err_set(err, AC_ERR_INVALID, "AGENTCORE_JWT_ALG must be HS256, RS256 or ES256");
  if (opt->leeway_s < 0 || opt->leeway_s > LEEWAY_MAX)
    return ac_err_set(err, AC_ERR_INVALID, "AGENTCORE_JWT_LEEWAY_S must be from 0 to %d",
                      LEEWAY_MAX);
  if (alg == ALG_HS256 && (!opt->secret || opt->secret_len < AC_JWT_MIN_SECRET))
    return ac_err_set(err, AC_ERR_INVALID,
                      "AGENTCORE_JWT_SECRET must be at least %d bytes for HS256 (got %zu)",
                      AC_JWT_MIN_SECRET, opt->secret ? opt->secret_len : 0);

  ac_jwt_verifier *v = calloc(1, sizeof *v);
  if (!v)
    return ac_err_set(err, AC_ERR_NOMEM, "jwt: out of memory");
  v->alg = alg;
  v->alg_name = alg_name;
  v->leeway_s = opt->leeway_s;
  v->now = opt->now ? opt->now : real_now;
  v->now_ud = opt->now_ud;
  pthread_mutex_init(&v->cache_lock, NULL);
  v->cache = calloc(CACHE_SLOTS, sizeof *v->cache);
  int rc = v->cache ? AC_OK : AC_ERR_NOMEM;
  if (rc == AC_OK && alg == ALG_HS256) {
    v->secret = malloc(opt->secret_len);
    if (!v->secret)
      rc = AC_ERR_NOMEM;
    else {
      memcpy(v->secret, opt->secret, opt->secret_len);
      v->secret_len = opt->secret_len;
    }
  } else if (rc == AC_OK) {
    rc = load_public_key(opt->public_key_file, alg, &v->pkey, err);
  }
  if (rc == AC_OK && opt->issuer && *opt->issuer && !(v->issuer = strdup(opt->issuer)))
    rc = AC_ERR_NOMEM;
  if (rc == AC_OK && opt->audience && *opt->audience && !(v->audience = strdup(opt->audience)))
    rc = AC_ERR_NOMEM;
  if (rc) {
    ac_jwt_verifier_free(v);
    if (rc == AC_ERR_NOMEM)
      return ac_err_set(err, rc, "jwt: out of memory");
    return rc;
  }
  *out = v;
  return AC_OK;
}

int ac_jwt_verifier_from_config(const ac_config *cfg, ac_jwt_verifier **out, ac_err *err) {
  ac_jwt_options opt = {
      .alg = cfg->jwt_alg,
      .secret = cfg->jwt_secret,
      .secret_len = strlen(cfg->jwt_secret),
      .public_key_file = cfg->jwt_public_key_file,
      .leeway_s = cfg->jwt_leeway_s,
      .issuer = cfg->jwt_issuer,
      .audience = cfg->jwt_audience,
  };
  return ac_jwt_verifier_new(&opt, out, err);
}

void ac_jwt_verifier_free(ac_jwt_verifier *v) {
  if (!v)
    return;
  if (v->secret) {
    OPENSSL_cleanse(v->secret, v->secret_len);
    free(v->secret);
  }
  EVP_PKEY_free(v->pkey);
  free(v->issuer);
  free(v->audience);
  for (size_t i = 0; v->cache && i < CACHE_SLOTS; i++) {
    free(v->cache[i].token);
    ac_principal_clear(&v->cache[i].who);
  }
  free(v->cache);
  pthread_mutex_destroy(&v->cache_lock);
  free(v);
}

/* ---- verification ----------------------------------------------------- */

static int deny(ac_err *err, const char *why) {
  return ac_err_set(err, AC_ERR_DENIED, "invalid token: %s", why);
}

/* Strictly decodes one part and parses it as a JSON object. */
static int decode_object(const char *s, size_t len, const char *what, unsigned char *work,
                         json_t **out, ac_err *err) {
  size_t n = 0;
  ac_err derr;
  if (ac_crypto_base64url_decode(s, len, work, PART_MAX, &n, &derr)) {
    return ac_err_set(err, AC_ERR_DENIED, "invalid token: %s: %s", what, derr.msg);
  }
  json_error_t jerr;
  /* Duplicate members are refused: two readers could otherwise disagree on
   * which `alg` or `sub` the token carries. */
  json_t *j = json_loadb((const char *)work, n, JSON_REJECT_DUPLICATES, &jerr);
  if (!j) {
    /* jansson's text can quote the input; log only the kind of failure. */
    enum json_error_code code = json_error_code(&jerr);
    if (code == json_error_out_of_memory)
      return ac_err_set(err, AC_ERR_NOMEM, "jwt: out of memory");
    return ac_err_set(err, AC_ERR_DENIED, "invalid token: %s %s", what,
                      code == json_error_duplicate_key ? "has a duplicate member"
                                                       : "is not valid JSON");
  }
  if (!json_is_object(j)) {
    json_decref(j);
    return ac_err_set(err, AC_ERR_DENIED, "invalid token: %s is not a JSON object", what);
  }
  *out = j;
  return AC_OK;
}

/* Verifies sig over msg with the configured key. 1 valid, 0 not, <0 fault. */
static int check_signature(const ac_jwt_verifier *v, const unsigned char *msg, size_t msg_len,
                           const unsigned char *sig, size_t sig_len) {
  if (v->alg == ALG_HS256) {
    unsigned char mac[AC_CRYPTO_SHA256_LEN];
    if (ac_crypto_hmac_sha256(v->secret, v->secret_len, msg, msg_len, mac))
      return AC_ERR_INTERNAL;
    return sig_len == sizeof mac && ac_crypto_equal(mac, sig, sizeof mac);
  }

  unsigned char *der = NULL;
  const unsigned char *use = sig;
  size_t use_len = sig_len;
  if (v->alg == ALG_ES256) {
    /* JWS carries ECDSA as raw r||s (RFC 7518 §3.4); OpenSSL wants DER. */
    if (sig_len != ES256_SIG_LEN)
      return 0;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, ES256_SIG_LEN / 2, NULL);
    BIGNUM *s = BN_bin2bn(sig + ES256_SIG_LEN / 2, ES256_SIG_LEN / 2, NULL);
    if (!es || !r || !s || !ECDSA_SIG_set0(es, r, s)) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(es);
      return AC_ERR_NOMEM;
    }
    int dlen = i2d_ECDSA_SIG(es, &der);
    ECDSA_SIG_free(es);
    if (dlen <= 0)
      return AC_ERR_NOMEM;
    use = der;
    use_len = (size_t)dlen;
  }

  int ok = AC_ERR_NOMEM;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  if (ctx && EVP_DigestVerifyInit(ctx, &pctx, EVP_sha256(), NULL, v->pkey) == 1 &&
      (v->alg != ALG_RS256 || EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1))
    ok = EVP_DigestVerify(ctx, use, use_len, msg, msg_len) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  /* A failed verify leaves entries on this thread's error queue. */
  ERR_clear_error();
  return ok;
}

/* Reads an optional NumericDate; -1 wrong type, 0 absent, 1 present. */
static int numeric_claim(const json_t *claims, const char *name, double *out) {
  const json_t *j = json_object_get(claims, name);
  if (!j)
    return 0;
  if (!json_is_number(j))
    return -1;
  *out = json_number_value(j);
  return 1;
}

static int check_claims(const ac_jwt_verifier *v, const json_t *claims, ac_err *err) {
  double now = (double)v->now(v->now_ud);
  double leeway = (double)v->leeway_s;
  double t = 0;
  int has = numeric_claim(claims, "exp", &t);
  if (has <= 0)
    return deny(err, has < 0 ? "exp is not a number" : "exp is missing");
  if (now >= t + leeway)
    return deny(err, "expired");
  if ((has = numeric_claim(claims, "nbf", &t)) < 0)
    return deny(err, "nbf is not a number");
  if (has && now + leeway < t)
    return deny(err, "not yet valid (nbf)");
  if ((has = numeric_claim(claims, "iat", &t)) < 0)
    return deny(err, "iat is not a number");
  if (has && t > now + leeway)
    return deny(err, "issued in the future (iat)");

  if (v->issuer) {
    const json_t *iss = json_object_get(claims, "iss");
    if (!json_is_string(iss) || strcmp(json_string_value(iss), v->issuer) != 0)
      return deny(err, "issuer mismatch");
  }
  if (v->audience) {
    const json_t *aud = json_object_get(claims, "aud");
    int match = 0;
    if (json_is_string(aud)) {
      match = strcmp(json_string_value(aud), v->audience) == 0;
    } else if (json_is_array(aud)) {
      for (size_t i = 0; i < json_array_size(aud) && !match; i++) {
        const json_t *a = json_array_get(aud, i);
        match = json_is_string(a) && strcmp(json_string_value(a), v->audience) == 0;
      }
    }
    if (!match)
      return deny(err, "audience mismatch");
  }
  const json_t *sub = json_object_get(claims, "sub");
  if (sub && !json_is_string(sub))
    return deny(err, "sub is not a string");
  return AC_OK;
}

int ac_jwt_verify(const ac_jwt_verifier *v, const char *token, json_t **claims, ac_err *err) {
  if (claims)
    *claims = NULL;
  if (!v)
    return ac_err_set(err, AC_ERR_INVALID, "jwt: no verifier");
  if (!token || !*token)
    return deny(err, "empty");
  size_t len = strnlen(token, AC_JWT_MAX_TOKEN + 1);
  if (len > AC_JWT_MAX_TOKEN)
    return ac_err_set(err, AC_ERR_DENIED, "invalid token: longer than %d bytes",
                      AC_JWT_MAX_TOKEN);
  const char *d1 = memchr(token, '.', len);
  const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
  if (!d1 || !d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)))
    return deny(err, "not three dot-separated parts");
  size_t h_len = (size_t)(d1 - token);
  size_t p_len = (size_t)(d2 - d1 - 1);
  size_t s_len = len - (size_t)(d2 + 1 - token);
  if (!h_len || !p_len || !s_len)
    return deny(err, "empty part (unsigned tokens are not accepted)");

  unsigned char work[PART_MAX], sig[PART_MAX];
  json_t *header = NULL;
  int rc = decode_object(token, h_len, "header", work, &header, err);
  if (rc)
    return rc;
  const json_t *alg = json_object_get(header, "alg");
  /* Exact comparison: "hs256", "none" or "HS256 " never select a key. */
  if (!json_is_string(alg) || strcmp(json_string_value(alg), v->alg_name) != 0)
    rc = ac_err_set(err, AC_ERR_DENIED, "invalid token: alg is not the configured %s",
                    v->alg_name);
  else if (json_object_get(header, "crit"))
    rc = deny(err, "crit header is not supported");
  json_decref(header);
  if (rc)
    return rc;

  size_t sig_len = 0;
  ac_err derr;
  if (ac_crypto_base64url_decode(d2 + 1, s_len, sig, sizeof sig, &sig_len, &derr))
    return ac_err_set(err, AC_ERR_DENIED, "invalid token: signature: %s", derr.msg);
  int ok = check_signature(v, (const unsigned char *)token, (size_t)(d2 - token), sig, sig_len);
  if (ok < 0)
    return ac_err_set(err, ok, "jwt: signature check failed inside OpenSSL");
  if (!ok)
    return deny(err, "bad signature");

  json_t *payload = NULL;
  if ((rc = decode_object(d1 + 1, p_len, "payload", work, &payload, err)))
    return rc;
  if ((rc = check_claims(v, payload, err))) {
    json_decref(payload);
    return rc;
  }
  if (claims)
    *claims = payload;
  else
    json_decref(payload);
  return AC_OK;
}

/* ---- principal -------------------------------------------------------- */

unsigned ac_jwt_permission_bit(const char *name) {
  static const struct {
    const char *name;
    unsigned bit;
  } perms[] = {
      {"canManagePlugins", AC_PERM_MANAGE_PLUGINS},
      {"canManageNamespaces", AC_PERM_MANAGE_NAMESPACES},
      {"canEmitEvents", AC_PERM_EMIT_EVENTS},
      {"canQueryPlugins", AC_PERM_QUERY_PLUGINS},
  };
  for (size_t i = 0; name && i < sizeof perms / sizeof perms[0]; i++)
    if (strcmp(name, perms[i].name) == 0)
      return perms[i].bit;
  return 0;
}

void ac_principal_clear(ac_principal *p) {
  if (!p)
    return;
  free(p->sub);
  for (size_t i = 0; i < p->department_count; i++)
    free(p->department_ids[i]);
  free(p->department_ids);
  memset(p, 0, sizeof *p);
}

static int fill_principal(const json_t *claims, ac_principal *out, ac_err *err) {
  const json_t *sub = json_object_get(claims, "sub");
  if (!json_is_string(sub) || json_string_length(sub) == 0)
    return deny(err, "sub is missing or not a non-empty string");
  /* the actor recorded with every write: longer ones do not fit the audit */
  size_t chars = 0;
  for (const char *c = json_string_value(sub); *c; c++)
    chars += ((unsigned char)*c & 0xC0) != 0x80;
  if (chars > AC_JWT_SUB_MAX)
    return deny(err, "sub is longer than 256 characters");
  if (!(out->sub = strdup(json_string_value(sub))))
    return ac_err_set(err, AC_ERR_NOMEM, "jwt: out of memory");

  const json_t *perms = json_object_get(claims, "permissions");
  if (perms && !json_is_array(perms))
    return deny(err, "permissions is not an array");
  for (size_t i = 0; i < json_array_size(perms); i++) {
    const json_t *p = json_array_get(perms, i);
    if (!json_is_string(p))
      return deny(err, "permissions holds a non-string");
    /* Unknown names are ignored so newer issuers can add permissions. */
    out->permissions |= ac_jwt_permission_bit(json_string_value(p));
  }

  const json_t *global = json_object_get(claims, "global");
  if (global && !json_is_boolean(global))
    return deny(err, "global is not a boolean");
  out->global = json_is_true(global);

  const json_t *depts = json_object_get(claims, "departmentIds");
  if (depts && !json_is_array(depts))
    return deny(err, "departmentIds is not an array");
  size_t n = json_array_size(depts);
  if (n > AC_JWT_MAX_DEPARTMENTS)
    return ac_err_set(err, AC_ERR_DENIED, "invalid token: departmentIds has more than %d entries",
                      AC_JWT_MAX_DEPARTMENTS);
  if (n && !(out->department_ids = calloc(n, sizeof *out->department_ids)))
    return ac_err_set(err, AC_ERR_NOMEM, "jwt: out of memory");
  for (size_t i = 0; i < n; i++) {
    const json_t *d = json_array_get(depts, i);
    if (!json_is_string(d))
      return deny(err, "departmentIds holds a non-string");
    if (!(out->department_ids[i] = strdup(json_string_value(d))))
      return ac_err_set(err, AC_ERR_NOMEM, "jwt: out of memory");
    out->department_count = i + 1;
  }
  return AC_OK;
}

int ac_jwt_principal(const json_t *claims, ac_principal *out, ac_err *err) {
  if (!out)
    return ac_err_set(err, AC_ERR_INVALID, "jwt: no principal");
  memset(out, 0, sizeof *out);
  if (!json_is_object(claims))
    return deny(err, "claims are not an object");
  int rc = fill_principal(claims, out, err);
  if (rc)
    ac_principal_clear(out);
  return rc;
}

static int principal_copy(const ac_principal *from, ac_principal *to) {
  memset(to, 0, sizeof *to);
  to->permissions = from->permissions;
  to->global = from->global;
  if (!(to->sub = strdup(from->sub)))
    return AC_ERR_NOMEM;
  if (from->department_count &&
      !(to->department_ids = calloc(from->department_count, sizeof *to->department_ids))) {
    ac_principal_clear(to);
    return AC_ERR_NOMEM;
  }
  for (size_t i = 0; i < from->department_count; i++) {
    if (!(to->department_ids[i] = strdup(from->department_ids[i]))) {
      ac_principal_clear(to);
      return AC_ERR_NOMEM;
    }
    to->department_count = i + 1;
  }
  return AC_OK;
}

/* The time window check_claims accepts the token in. */
static void time_window(const ac_jwt_verifier *v, const json_t *claims, double *from,
                        double *until) {
  double leeway = (double)v->leeway_s, t = 0;
  numeric_claim(claims, "exp", &t);
  *until = t + leeway;
  *from = -1e300;
  if (numeric_claim(claims, "nbf", &t) > 0 && t - leeway > *from)
    *from = t - leeway;
  if (numeric_claim(claims, "iat", &t) > 0 && t - leeway > *from)
    *from = t - leeway;
}

int ac_jwt_authenticate(const ac_jwt_verifier *v, const char *token, ac_principal *out,
                        ac_err *err) {
  if (out)
    memset(out, 0, sizeof *out);
  size_t len = token ? strnlen(token, AC_JWT_MAX_TOKEN + 1) : 0;
  uint64_t hash = ac_hash_bytes(AC_HASH_SEED, token ? token : "", len);
  ac_jwt_verifier *cv = (ac_jwt_verifier *)v; /* the cache is internally locked */
  verified *slot = v && v->cache && out && len && len <= AC_JWT_MAX_TOKEN
                       ? &cv->cache[hash % CACHE_SLOTS]
                       : NULL;
  if (slot) {
    double now = (double)v->now(v->now_ud);
    pthread_mutex_lock(&cv->cache_lock);
    int hit = slot->token && slot->hash == hash && slot->len == len &&
              memcmp(slot->token, token, len) == 0 && now >= slot->valid_from &&
              now < slot->valid_until;
    int rc = hit ? principal_copy(&slot->who, out) : AC_ERR_NOTFOUND;
    pthread_mutex_unlock(&cv->cache_lock);
    if (hit && rc == AC_OK)
      return AC_OK;
  }
  json_t *claims = NULL;
  int rc = ac_jwt_verify(v, token, &claims, err);
  if (rc == AC_OK)
    rc = ac_jwt_principal(claims, out, err);
  if (rc == AC_OK && slot) {
    verified fresh = {.hash = hash, .len = len, .token = malloc(len + 1)};
    time_window(v, claims, &fresh.valid_from, &fresh.valid_until);
    if (fresh.token && principal_copy(out, &fresh.who) == AC_OK) {
      memcpy(fresh.token, token, len + 1);
      pthread_mutex_lock(&cv->cache_lock);
      verified old = *slot;
      *slot = fresh;
      pthread_mutex_unlock(&cv->cache_lock);
      free(old.token);
      ac_principal_clear(&old.who);
    } else {
      free(fresh.token);
    }
  }
  json_decref(claims);
  return rc;
}

/* ---- signing ---------------------------------------------------------- */

static int append_b64url(ac_buf *b, const void *data, size_t len) {
  size_t need = AC_CRYPTO_B64_SIZE(len);
  char *tmp = malloc(need);
  if (!tmp)
    return AC_ERR_NOMEM;
  size_t n = 0;
  int rc = ac_crypto_base64url_encode(data, len, tmp, need, &n);
  if (rc == AC_OK)
    rc = ac_buf_append(b, tmp, n);
  free(tmp);
  return rc;
}

int ac_jwt_sign_hs256(const void *secret, size_t secret_len, const json_t *claims,
                      char **token_out, ac_err *err) {
  static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
  if (!token_out)
    return ac_err_set(err, AC_ERR_INVALID, "jwt: no output");
  *token_out = NULL;
  if (!secret || secret_len < AC_JWT_MIN_SECRET)
    return ac_err_set(err, AC_ERR_INVALID,
                      "AGENTCORE_JWT_SECRET must be at least %d bytes for HS256 (got %zu)",
                      AC_JWT_MIN_SECRET, secret ? secret_len : 0);
  if (!json_is_object(claims))
    return ac_err_set(err, AC_ERR_INVALID, "jwt: claims must be a JSON object");
  char *payload = json_dumps(claims, JSON_COMPACT);
  if (!payload)
    return ac_err_set(err, AC_ERR_NOMEM, "jwt: out of memory");

  /* Capped at what a verifier accepts: a longer token would be useless. */
  ac_buf b = AC_BUF_INIT(AC_JWT_MAX_TOKEN);
  unsigned char mac[AC_CRYPTO_SHA256_LEN];
  int rc = append_b64url(&b, header, sizeof header - 1);
  if (rc == AC_OK)
    rc = ac_buf_puts(&b, ".");
  if (rc == AC_OK)
    rc = append_b64url(&b, payload, strlen(payload));
  free(payload);
  if (rc == AC_OK)
    rc = ac_crypto_hmac_sha256(secret, secret_len, b.data, b.len, mac);
  if (rc == AC_OK)
    rc = ac_buf_puts(&b, ".");
  if (rc == AC_OK)
    rc = append_b64url(&b, mac, sizeof mac);
  if (rc) {
    ac_buf_free(&b);
    if (rc == AC_ERR_LIMIT)
      return ac_err_set(err, rc, "jwt: token would exceed %d bytes", AC_JWT_MAX_TOKEN);
    return ac_err_set(err, rc, "jwt: cannot sign: %s", ac_err_name(rc));
  }
  if (!(*token_out = ac_buf_take(&b)))
    return ac_err_set(err, AC_ERR_NOMEM, "jwt: out of memory");
  return AC_OK;
}
