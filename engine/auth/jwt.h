/* jwt.h — bearer-token verification (HS256, RS256, ES256) and the principal
 * a verified token describes. */
#ifndef AC_AUTH_JWT_H
#define AC_AUTH_JWT_H

#include "core/config.h"
#include "core/err.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AC_JWT_MAX_TOKEN 8192      /* longest token accepted, in bytes */
#define AC_JWT_MIN_SECRET 32       /* shortest HS256 secret, in bytes */
#define AC_JWT_MAX_DEPARTMENTS 1000 /* longest departmentIds accepted */

/* Permission bits carried by the `permissions` claim. */
enum {
  AC_PERM_MANAGE_PLUGINS = 1u << 0,    /* canManagePlugins */
  AC_PERM_MANAGE_NAMESPACES = 1u << 1, /* canManageNamespaces */
  AC_PERM_EMIT_EVENTS = 1u << 2,       /* canEmitEvents */
  AC_PERM_QUERY_PLUGINS = 1u << 3      /* canQueryPlugins */
};

/* How to build a verifier. Strings and the secret are borrowed for the
 * call only (the verifier keeps copies). */
typedef struct ac_jwt_options {
  const char *alg;                 /* "HS256", "RS256" or "ES256", exact */
  const void *secret;              /* HS256: key bytes, >= AC_JWT_MIN_SECRET */
  size_t secret_len;
  const char *public_key_file;     /* RS256/ES256: PEM public key (SPKI) */
  int leeway_s;                    /* clock skew allowed, 0..86400 */
  const char *issuer;              /* NULL or "": `iss` not checked */
  const char *audience;            /* NULL or "": `aud` not checked */
  int64_t (*now)(void *ud);        /* Unix seconds; NULL: time(NULL) */
  void *now_ud;
} ac_jwt_options;

typedef struct ac_jwt_verifier ac_jwt_verifier;

/* Who a verified token speaks for. Filled by ac_jwt_principal; release with
 * ac_principal_clear. */
typedef struct ac_principal {
  char *sub;               /* never NULL or empty once filled */
  unsigned permissions;    /* AC_PERM_* bits */
  bool global;             /* sees every namespace */
  char **department_ids;   /* department_count strings */
  size_t department_count;
} ac_principal;

/* Creates an immutable verifier (safe to share between threads). Refuses,
 * with AC_ERR_INVALID and a one-line message naming the AGENTCORE_* variable,
 * an unknown alg, an HS256 secret under 32 bytes, an unreadable PEM or a key
 * of the wrong type (RS256: RSA >= 2048 bits; ES256: EC P-256). */
int ac_jwt_verifier_new(const ac_jwt_options *opt, ac_jwt_verifier **out, ac_err *err);

/* Builds a verifier from the AGENTCORE_JWT_* settings in cfg (real clock).
 * Errors as for ac_jwt_verifier_new. */
int ac_jwt_verifier_from_config(const ac_config *cfg, ac_jwt_verifier **out, ac_err *err);

/* Frees v. NULL is a no-op. */
void ac_jwt_verifier_free(ac_jwt_verifier *v);

/* Verifies a compact JWS (NUL-terminated, <= 8 KiB, strict base64url, alg
 * equal to the configured one, no `crit`, valid signature, `exp` required,
 * `nbf`/`iat` honoured with leeway, `iss`/`aud` when configured, `sub` a
 * string if present). On success *claims is the payload (caller decrefs).
 * Any rejection is AC_ERR_DENIED (answer 401); the message never quotes the
 * token. Other codes (AC_ERR_NOMEM) are server faults. */
int ac_jwt_verify(const ac_jwt_verifier *v, const char *token, json_t **claims, ac_err *err);

/* Reads a principal from verified claims: `sub` (required, non-empty
 * string), `permissions` (array of strings; unknown names ignored),
 * `global` (boolean, default false), `departmentIds` (array of at most 1000
 * strings). A claim of the wrong type is AC_ERR_DENIED. out is zeroed
 * first; on failure nothing is left to free. */
int ac_jwt_principal(const json_t *claims, ac_principal *out, ac_err *err);

/* ac_jwt_verify then ac_jwt_principal: what the HTTP layer calls. */
int ac_jwt_authenticate(const ac_jwt_verifier *v, const char *token, ac_principal *out,
                        ac_err *err);

/* Frees what p holds and zeroes it. NULL is a no-op. */
void ac_principal_clear(ac_principal *p);

/* The AC_PERM_* bit for a claim name ("canEmitEvents"), or 0 if unknown.
 * Names are case-sensitive. */
unsigned ac_jwt_permission_bit(const char *name);

/* Signs claims (a JSON object) as an HS256 compact JWS with header
 * {"alg":"HS256","typ":"JWT"}; for dev tokens and tests. The secret must
 * be at least 32 bytes. *token_out is NUL-terminated, caller frees. */
int ac_jwt_sign_hs256(const void *secret, size_t secret_len, const json_t *claims,
                      char **token_out, ac_err *err);

#endif
