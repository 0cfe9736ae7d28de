/*
 * adm_json.c — every --json output of fdadmin, built as a json-c tree and
 * printed by the library (json_object_to_json_string_ext, compact: no
 * spaces, "/" not escaped), one document and a newline per output.
 *
 * Why json-c (libjson-c-dev) and not jansson (libjansson-dev), the other
 * JSON library in Debian 12: fdadmin prints uint64 counters (bytes,
 * versions, ms), and json-c stores and prints an unsigned 64-bit integer
 * exactly (json_object_new_uint64, 0.14+) where jansson's integers are a
 * signed long long; json_object_new_double_s lets a number keep the text
 * fdadmin gives it ("seconds":1.234, as before), where jansson prints a
 * real with %.17g-style precision; and json-c keeps keys in insertion
 * order, so the output is byte for byte what the hand-written printf gave
 * (tests/admin compare strings) except for the escapes of control
 * characters (\n and \t short, as JSON allows, instead of \u000a). It is
 * also the more widely used of the two in Debian (systemd-free tools,
 * rsyslog, bind9 link it), and its parser checks our output in the tests.
 *
 * Allocation failures: every helper tolerates a NULL object or value;
 * adm_json_print then finds the hole (a NULL member) and fails the output
 * instead of printing a document with a null where a value should be.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"

json_object *adm_json_object(void) { return json_object_new_object(); }
json_object *adm_json_array(void) { return json_object_new_array(); }

void adm_json_add(json_object *o, const char *key, json_object *value) {
  if (!o) {
    json_object_put(value);
    return;
  }
  if (json_object_object_add(o, key, value) != 0) json_object_put(value);
}

void adm_json_push(json_object *array, json_object *value) {
  if (!array || json_object_array_add(array, value) != 0) json_object_put(value);
}

void adm_json_add_str(json_object *o, const char *key, const char *s) {
  adm_json_add(o, key, json_object_new_string(s ? s : ""));
}

void adm_json_add_u64(json_object *o, const char *key, uint64_t v) {
  adm_json_add(o, key, json_object_new_uint64(v));
}

void adm_json_add_bool(json_object *o, const char *key, bool v) {
  adm_json_add(o, key, json_object_new_boolean(v));
}

void adm_json_add_fixed(json_object *o, const char *key, double v, int decimals) {
  char text[64];
  snprintf(text, sizeof(text), "%.*f", decimals, v);
  adm_json_add(o, key, json_object_new_double_s(v, text));
}

/* True when the tree has no hole left by a failed allocation. */
static bool whole(json_object *o, unsigned depth) {
  if (depth > ADM_JSON_DEPTH_MAX) return false;
  if (json_object_is_type(o, json_type_object)) {
    struct json_object_iterator it = json_object_iter_begin(o), end = json_object_iter_end(o);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
      json_object *v = json_object_iter_peek_value(&it);
      if (!v || !whole(v, depth + 1)) return false;
    }
  } else if (json_object_is_type(o, json_type_array)) {
    size_t n = json_object_array_length(o);
    for (size_t i = 0; i < n; i++) {
      json_object *v = json_object_array_get_idx(o, i);
      if (!v || !whole(v, depth + 1)) return false;
    }
  }
  return true;
}

int adm_json_print(json_object *o) {
  int rc = 0;
  const char *text = NULL;
  if (!o || !whole(o, 0)) rc = -ENOMEM;
  else text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                    JSON_C_TO_STRING_NOSLASHESCAPE);
  if (rc == 0 && !text) rc = -ENOMEM;
  if (rc == 0 && (fputs(text, stdout) < 0 || putchar('\n') == EOF)) rc = -EIO;
  if (rc == -ENOMEM) fprintf(stderr, "fdadmin: out of memory building the JSON output\n");
  json_object_put(o);
  return rc;
}
