/* sb_json_schema: a JSON Schema (2020-12 subset) validator for tool arguments and config. */
#ifndef SB_JSON_SCHEMA_H
#define SB_JSON_SCHEMA_H
#include <stddef.h>
#include <cjson/cJSON.h>

/*
 * Validate `instance` against `schema`. `root` is the document that "$ref": "#/$defs/x" (and
 * "#/definitions/x", "#") resolve against; pass the schema itself when it is the root.
 * Supported keywords: type (string or array of types; "integer" means a number with no fractional
 * part), properties, required, additionalProperties (boolean or schema), items (schema),
 * enum, const, minLength/maxLength (in Unicode code points), pattern is NOT supported (ignored),
 * minimum/maximum/exclusiveMinimum/exclusiveMaximum, minItems/maxItems, uniqueItems,
 * format (email, date-time, uri, date; other formats ignored), $ref to $defs/definitions, allOf,
 * anyOf, oneOf, not, default (ignored here). Unknown keywords are ignored.
 * Returns 0 when valid. On the first failure returns -1 and writes into err (NUL-terminated,
 * truncated to errlen) a message naming the location and the rule, e.g.
 *   "arguments.signers[0].email: must be a valid email address (format)"
 *   "arguments: missing required property 'title' (required)"
 * `where` is the name used for the instance root in messages (e.g. "arguments"); NULL -> "value".
 * Recursion is bounded (depth 64 of schema or instance; deeper fails with a message). Nothing is
 * allocated that outlives the call.
 */
int sb_schema_validate(const cJSON *schema, const cJSON *root, const cJSON *instance,
                       const char *where, char *err, size_t errlen);

/* Check that `schema` only uses the supported keywords with well-formed values and that every
 * $ref resolves (used at start-up for the embedded contracts). 0 or -1 with err filled. */
int sb_schema_check(const cJSON *schema, char *err, size_t errlen);

/* Fill in "default" values of properties that are absent in object `instance` (one level, and
 * recursively into present object properties). Returns 0; -1 on allocation failure. */
int sb_schema_apply_defaults(const cJSON *schema, const cJSON *root, cJSON *instance);

#endif
