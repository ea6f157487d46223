/* sb_json_schema: a JSON Schema (2020-12 subset) validator for tool arguments and config. */
#ifndef SB_JSON_SCHEMA_H
#define SB_JSON_SCHEMA_H
#include <stddef.h>
#include <cjson/cJSON.h>

/*
 * Validate `instance` against `schema`. `root` is the document that "$ref" resolves against
 * ("#", "#/$defs/x", "#/definitions/x" or any other local JSON pointer, with ~0 ~1 and %XX
 * unescaping; remote references are not supported); NULL -> `schema` itself.
 * Supported keywords: type (string or array of types; "integer" means a number with no fractional
 * part), properties, required, additionalProperties (boolean or schema), items (schema),
 * prefixItems (positional; items then applies only after the prefix), enum, const (deep
 * equality, 1 == 1.0, object key order ignored), minLength/maxLength (in Unicode code points),
 * minimum/maximum/exclusiveMinimum/exclusiveMaximum (2020-12 numeric form), minItems/maxItems,
 * uniqueItems, minProperties/maxProperties, format (email, date-time, uri, date; other formats
 * ignored), $ref, allOf, anyOf, oneOf, not. A boolean schema (true/false) is accepted wherever a
 * schema is. pattern is NOT supported (ignored); $schema, $id, title, description, default,
 * examples and unknown keywords are ignored.
 * Returns 0 when valid (err is then ""). On the first failure returns -1 and writes into err
 * (NUL-terminated, truncated to errlen without splitting a UTF-8 character; err may be NULL when
 * errlen is 0) a message naming the location and the rule, e.g.
 *   "arguments.signers[0].email: must be a valid email address (format)"
 *   "arguments: missing required property 'title' (required)"
 *   "arguments[\"odd name\"]: must be of type string, got number (type)"
 * Property names that are not identifiers, and any control or ill-formed bytes, are escaped.
 * `where` is the name used for the instance root in messages (e.g. "arguments"); NULL -> "value".
 * Recursion is bounded: 64 nested steps (each subschema application and each $ref hop counts),
 * deep equality looks 64 levels deep, and one call performs at most 4,000,000 steps. Exceeding a
 * bound, or an unresolvable $ref, fails with a message ("(depth)", "(complexity)", "($ref)") that
 * anyOf/oneOf/not cannot absorb. The validation path does not allocate, except uniqueItems on
 * arrays of more than 16 items (a temporary hash table, freed before returning).
 */
int sb_schema_validate(const cJSON *schema, const cJSON *root, const cJSON *instance,
                       const char *where, char *err, size_t errlen);

/* Check that `schema` uses well-formed values for the supported keywords (type names, required
 * as an array of strings, non-negative integer minLength/maxItems/... counts, numeric bounds,
 * non-empty enum/allOf/anyOf/oneOf, properties/$defs/definitions as objects of schemas, ...), every
 * $ref resolves to a schema without a $ref-only cycle, and every "default" validates against
 * the schema that holds it. Unknown keywords are allowed. Nesting is bounded at 64 levels. Used at
 * start-up for the embedded contracts. 0 or -1 with err naming the schema path, e.g.
 * "schema.properties.x.type: unknown type \"strin\"". */
int sb_schema_check(const cJSON *schema, char *err, size_t errlen);

/* Fill in "default" values (deep copies) of properties that are absent in object `instance`, and
 * recursively inside present object-valued properties, including object defaults just added
 * (so {"default": {}} with defaulted sub-properties yields a filled object). $ref is followed
 * (root as for sb_schema_validate; NULL -> schema). Does nothing unless instance is an object.
 * Returns 0; -1 on allocation failure (defaults added so far stay). */
int sb_schema_apply_defaults(const cJSON *schema, const cJSON *root, cJSON *instance);

#endif
