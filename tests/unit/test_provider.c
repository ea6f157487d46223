/* Unit tests for providers/sb_provider's JSON access: sb_jget finds what
 * cJSON_GetObjectItemCaseSensitive finds -- the first member of that exact name -- for names that
 * share their first bytes, empty names, one-byte names, duplicates, and in trees parsed into an
 * arena, and sb_jpick what sb_jget finds, for many names at once; the sb_jput_* macros add what
 * cJSON_Add<Type>ToObject adds, with the key linked; the sb_pjw_* writers write what the
 * sb_jadd_* tree prints. */
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
    /* sb_jpick finds what sb_jget finds, for any set of distinct names at once */
    for (size_t t = 0; t < 2; t++) {
        size_t nk = sizeof keys / sizeof keys[0];
        const cJSON *got[SB_JPICK_MAX];
        for (size_t from = 0; from < nk; from++)
            for (size_t len = 1; from + len <= nk; len++) {
                sb_jpick(trees[t], keys + from, len, got);
                for (size_t i = 0; i < len; i++)
                    if (got[i] != sb_jget(trees[t], keys[from + i]))
                        fail_msg("sb_jpick of %zu names from %zu: \"%s\" differs", len, from,
                                 keys[from + i]);
            }
    }
    const cJSON *got2[2] = {trees[0], trees[0]};
    static const char *const two[] = {"status", "id"};
    sb_jpick(NULL, two, 2, got2);
    assert_null(got2[0]);
    assert_null(got2[1]);
    assert_null(sb_jget(NULL, "a"));
    assert_null(sb_jget(trees[0], NULL));
    cJSON *arr = cJSON_Parse("[1,2]"); /* not an object: members have no names */
    assert_null(sb_jget(arr, "a"));
    sb_jpick(arr, two, 2, got2);
    assert_null(got2[0]);
    assert_null(got2[1]);
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

/* Written times, numbers and the list envelope are what the tree helpers print. */
static void pjw_matches_tree(void **state)
{
    (void)state;
    static const double epochs[] = {1700000000, 1700000000.5, 0, -5, 253402300800.0, 1e300};
    static const char *const isos[] = {"2026-11-20T02:30:10Z", "2026-11-20T02:30:10.123+02:00",
                                       "2026-11-20T02:30:10", "2026-11-20", "not a time", NULL};
    static const double ints[] = {-1, 0, 7, 1e15};
    sb_pctx c = {.provider = "boldsign", .region = "eu"};
    cJSON *items = cJSON_CreateArray();
    cJSON *t = sb_list_result(&c, "documents", items, 3, 10, 123, 1);
    cJSON *more = sb_jput_obj(t, "more");
    for (size_t i = 0; i < sizeof epochs / sizeof *epochs; i++) sb_jadd_epoch(more, "e", epochs[i]);
    for (size_t i = 0; i < sizeof isos / sizeof *isos; i++) sb_jadd_iso(more, "t", isos[i]);
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) sb_jadd_int_or_null(more, "n", ints[i]);
    char *want = sb_json_print(t);

    sb_buf b;
    sb_buf_init(&b, 1 << 16);
    sb_jw w;
    sb_jw_init(&w, &b);
    sb_pjw_list_begin(&w, "documents");
    sb_pjw_list_end(&w, &c, 3, 10, 123, 1);
    sb_jw_obj(&w, "more");
    for (size_t i = 0; i < sizeof epochs / sizeof *epochs; i++) sb_pjw_epoch(&w, "e", epochs[i]);
    for (size_t i = 0; i < sizeof isos / sizeof *isos; i++) sb_pjw_iso(&w, "t", isos[i]);
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) sb_pjw_int_or_null(&w, "n", ints[i]);
    sb_jw_close(&w, '}');
    sb_jw_close(&w, '}');
    assert_int_equal(sb_jw_finish(&w), 0);
    assert_string_equal(b.data, want);

    /* the tree of a written item */
    cJSON *back = sb_pjw_tree(&w);
    assert_non_null(back);
    char *again = sb_json_print(back); /* (duplicate keys: compared as printed) */
    assert_string_equal(again, want);
    assert_null(b.data); /* the buffer went with it */
    free(again);
    cJSON_Delete(back);

    /* no envelope total or next page: nulls */
    cJSON *t2 = sb_list_result(&c, "users", cJSON_CreateArray(), 1, 20, -1, 0);
    char *want2 = sb_json_print(t2);
    sb_buf_init(&b, 1 << 16);
    sb_jw_init(&w, &b);
    sb_pjw_list_begin(&w, "users");
    sb_pjw_list_end(&w, &c, 1, 20, -1, 0);
    sb_jw_close(&w, '}');
    assert_int_equal(sb_jw_finish(&w), 0);
    assert_string_equal(b.data, want2);
    sb_buf_free(&b);

    /* a failed write gives no tree */
    sb_buf_init(&b, 1 << 16);
    sb_jw_init(&w, &b);
    sb_jw_open(&w, '{');
    assert_null(sb_pjw_tree(&w));
    free(want);
    free(want2);
    cJSON_Delete(t);
    cJSON_Delete(t2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(jget_matches_cjson),
        cmocka_unit_test(jput_links_constant_keys),
        cmocka_unit_test(pjw_matches_tree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
