/* cmd_schema.c — `agentcore schema validate SCHEMA INSTANCE` (docs/cli.md). */
#include "cli/commands.h"
#include "core/json_error.h"
#include "core/config.h"
#include "plugin/loader.h"
#include "schema/schema.h"

#include <stdio.h>
#include <string.h>

/* Exit statuses of docs/cli.md. */
#define EXIT_VALID 0
#define EXIT_INVALID 1
#define EXIT_USAGE 2

static const char usage[] =
    "usage: agentcore schema validate SCHEMA INSTANCE\n"
    "\n"
    "Validates the JSON document INSTANCE against SCHEMA and prints\n"
    "{\"valid\":true|false,\"errors\":[{\"path\",\"keyword\",\"message\"}...]}.\n"
    "\n"
    "  SCHEMA    a JSON Schema (.json, draft 2020-12 subset of the engine) or a\n"
    "            plugin file (.lua), whose configSchema is used\n"
    "  INSTANCE  a JSON file, or - for standard input\n"
    "\n"
    "The instance is checked as given: defaults are not filled in first.\n"
    "Exit status: 0 valid, 1 invalid, 2 unsupported schema or usage error.\n";

static int usage_error(const char *fmt, const char *arg) {
  fputs("agentcore schema: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\n\n", stderr);
  fputs(usage, stderr);
  return EXIT_USAGE;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Reads a JSON document, refusing duplicate keys (a config with two "url"
 * members means something the author did not check). "-" is stdin. */
static json_t *load_json(const char *path, size_t flags) {
  json_error_t jerr;
  flags |= JSON_REJECT_DUPLICATES;
  json_t *v = strcmp(path, "-") == 0 ? json_loadf(stdin, flags, &jerr)
                                     : json_load_file(path, flags, &jerr);
  if (!v) {
    char where[300];
    ac_json_error_describe(&jerr, where, sizeof where);
    fprintf(stderr, "agentcore schema: %s: invalid JSON at %s\n",
            strcmp(path, "-") == 0 ? "<stdin>" : path, where);
  }
  return v;
}

static json_t *load_schema(const char *path) {
  if (!ends_with(path, ".lua"))
    return load_json(path, 0);
  ac_config cfg;
  ac_err err = {0};
  json_t *schema = NULL;
  if (ac_config_from_env(&cfg, &err) != AC_OK ||
      ac_plugin_config_schema_from_file(path, &cfg, &schema, &err) != AC_OK) {
    fprintf(stderr, "agentcore schema: %s\n", err.msg);
    return NULL;
  }
  return schema;
}

static int validate(const char *schema_path, const char *instance_path) {
  json_t *schema_json = load_schema(schema_path);
  if (!schema_json)
    return EXIT_USAGE;
  ac_schema *schema = NULL;
  ac_err err = {0};
  int rc = ac_schema_compile(schema_json, &schema, &err);
  json_decref(schema_json);
  if (rc != AC_OK) {
    fprintf(stderr, "agentcore schema: %s: %s\n", schema_path, err.msg);
    return EXIT_USAGE;
  }
  json_t *instance = load_json(instance_path, JSON_DECODE_ANY);
  if (!instance) {
    ac_schema_free(schema);
    return EXIT_USAGE;
  }
  json_t *errors = NULL;
  rc = ac_schema_validate(schema, instance, &errors);
  json_decref(instance);
  ac_schema_free(schema);
  if (rc != AC_OK && rc != AC_ERR_INVALID) {
    fprintf(stderr, "agentcore schema: validation failed: %s\n", ac_err_name(rc));
    return EXIT_USAGE;
  }
  json_t *out = json_object();
  json_object_set_new(out, "valid", json_boolean(rc == AC_OK));
  json_object_set_new(out, "errors", errors);
  int wrote = json_dumpf(out, stdout, JSON_COMPACT);
  json_decref(out);
  if (wrote != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0) {
    fputs("agentcore schema: cannot write the result\n", stderr);
    return EXIT_USAGE;
  }
  return rc == AC_OK ? EXIT_VALID : EXIT_INVALID;
}

int ac_cmd_schema(int argc, char **argv) {
  if (argc < 2)
    return usage_error("%s", "missing subcommand");
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    fputs(usage, stdout);
    return EXIT_VALID;
  }
  if (strcmp(argv[1], "validate") != 0)
    return usage_error("unknown subcommand \"%s\"", argv[1]);
  const char *positional[2];
  int count = 0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      fputs(usage, stdout);
      return EXIT_VALID;
    }
    if (argv[i][0] == '-' && argv[i][1] != '\0')
      return usage_error("unknown option \"%s\"", argv[i]);
    if (count == 2)
      return usage_error("unexpected argument \"%s\"", argv[i]);
    positional[count++] = argv[i];
  }
  if (count != 2)
    return usage_error("%s", "validate needs SCHEMA and INSTANCE");
  return validate(positional[0], positional[1]);
}
