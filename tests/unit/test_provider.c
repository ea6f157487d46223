/* Unit tests for providers/sb_provider's JSON access: sb_jget finds what
 * cJSON_GetObjectItemCaseSensitive finds -- the first member of that exact name -- for names that
 * share their first bytes, empty names, one-byte names, duplicates, and in trees parsed into an
 * arena; the sb_jput_* macros add what cJSON_Add<Type>ToObject adds, with the key linked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/sb_arena.h"
#include "core/sb_json.h"
#include "providers/sb_provider.h"

static void same_as_cjson(const cJSON *o, const char *key)
{
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(o, key);
    const cJSON *got = sb_jget(o, key);
    if (got != want)
        fail_msg("sb_jget(\"%s\") found %p, cJSON %p", key, (const void *)got, (const void *)want);
}

static void jget_matches_cjson(void **state)
{
    (void)state;
    static const char doc[] =
        "{\"signerName\":1,\"signerRole\":2,\"signerEmail\":3,\"status\":4,\"s\":5,\"\":6,"
        "\"st\":7,\"status\":8,\"signType\":9,\"id\":10,\"isViewed\":11,\"isDeleted\":12}";
    static const char *const keys[] = {
        "signerName", "signerRole", "signerEmail", "status", "s", "", "st", "signType", "id",
        "isViewed", "isDeleted", "sign", "signerNam", "signerNameX", "statu", "i", "x", "S",
        "Status", "isviewed"};
    sb_arena *a = sb_arena_new(0);
    assert_non_null(a);
    const cJSON *trees[] = {cJSON_Parse(doc), sb_json_parse_in(doc, sizeof doc - 1, a)};
    for (size_t t = 0; t < 2; t++) {
        assert_non_null(trees[t]);
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) same_as_cjson(trees[t], keys[i]);
        /* duplicates: the first one */
        assert_int_equal((int)sb_jnum(trees[t], "status", -1), 4);
        assert_int_equal((int)sb_jnum(trees[t], "", -1), 6);
    }
    assert_null(sb_jget(NULL, "a"));
    assert_null(sb_jget(trees[0], NULL));
    cJSON *arr = cJSON_Parse("[1,2]"); /* not an object: members have no names */
    assert_null(sb_jget(arr, "a"));
    cJSON_Delete(arr);
    cJSON_Delete((cJSON *)trees[0]);
    sb_arena_free(a);
}

static void jput_links_constant_keys(void **state)
{
    (void)state;
    /* what cJSON_Add<Type>ToObject adds, with the key linked instead of copied */
    cJSON *o = cJSON_CreateObject(), *want = cJSON_CreateObject();
    assert_non_null(sb_jput_str(o, "s", "v"));
    cJSON_AddStringToObject(want, "s", "v");
    assert_null(sb_jput_str(o, "absent", NULL)); /* no string: nothing added, like cJSON */
    assert_null(cJSON_AddStringToObject(want, "absent", NULL));
    sb_jput_num(o, "n", 2.5);
    cJSON_AddNumberToObject(want, "n", 2.5);
    sb_jput_bool(o, "b", 1);
    cJSON_AddBoolToObject(want, "b", 1);
    sb_jput_null(o, "z");
    cJSON_AddNullToObject(want, "z");
    sb_jput_true(o, "t");
    cJSON_AddTrueToObject(want, "t");
    sb_jput_false(o, "f");
    cJSON_AddFalseToObject(want, "f");
    cJSON *inner = sb_jput_obj(o, "o");
    sb_jput_str(inner, "k", "w");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(want, "o"), "k", "w");
    cJSON *arr = sb_jput_arr(o, "a");
    cJSON_AddItemToArray(arr, cJSON_CreateNumber(1));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(want, "a"), cJSON_CreateNumber(1));
    assert_null(sb_jput_str(NULL, "x", "v")); /* no object: the item is freed (ASan checks) */
    char *a = cJSON_PrintUnformatted(o), *b = cJSON_PrintUnformatted(want);
    assert_string_equal(a, b);
    for (const cJSON *c = o->child; c; c = c->next) assert_true(c->type & cJSON_StringIsConst);
    /* a duplicate keeps the literal; replacing a member copies the new key */
    cJSON *dup = cJSON_Duplicate(o, 1);
    assert_true(cJSON_Compare(dup, o, 1));
    assert_true(cJSON_ReplaceItemInObjectCaseSensitive(o, "s", cJSON_CreateString("x")));
    assert_string_equal(sb_jstr(o, "s"), "x");
    free(a);
    free(b);
    cJSON_Delete(dup);
    cJSON_Delete(o);
    cJSON_Delete(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jget_matches_cjson),
        cmocka_unit_test(jput_links_constant_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
