/* Unit tests: growable arrays and the string builder (ibp/vec.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/vec.h"

static void test_grow_doubles(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0;
    a = ibp_grow(a, &cap, 1, sizeof *a);
    assert_non_null(a);
    assert_int_equal(cap, 8);
    for (int i = 0; i < 8; i++)
        a[i] = i;
    int *same = ibp_grow(a, &cap, 8, sizeof *a);
    assert_ptr_equal(same, a);
    assert_int_equal(cap, 8);
    a = ibp_grow(a, &cap, 9, sizeof *a);
    assert_non_null(a);
    assert_int_equal(cap, 16);
    a = ibp_grow(a, &cap, 100, sizeof *a);
    assert_non_null(a);
    assert_int_equal(cap, 128);
    for (int i = 0; i < 8; i++)
        assert_int_equal(a[i], i); /* contents kept */
    a[127] = 1;
    free(a);
}

static void test_grow_from_odd_capacity(void **state)
{
    (void)state;
    size_t cap = 3;
    char *p = malloc(3);
    assert_non_null(p);
    p = ibp_grow(p, &cap, 4, 1);
    assert_non_null(p);
    assert_int_equal(cap, 6);
    free(p);
}

static void test_grow_overflow(void **state)
{
    (void)state;
    uint64_t keep = 42;
    uint64_t *a = malloc(sizeof *a);
    assert_non_null(a);
    *a = keep;
    size_t cap = 1;
    /* need * elem_size overflows: NULL, array and capacity untouched. */
    assert_null(ibp_grow(a, &cap, SIZE_MAX / 8 + 1, 8));
    assert_int_equal(cap, 1);
    assert_null(ibp_grow(a, &cap, SIZE_MAX, 2));
    assert_int_equal(cap, 1);
    /* Fits in size_t but passes PTRDIFF_MAX: refused without asking malloc. */
    assert_null(ibp_grow(a, &cap, SIZE_MAX / 8, 8));
    assert_int_equal(cap, 1);
    assert_null(ibp_grow(a, &cap, (size_t)PTRDIFF_MAX / 8 + 1, 8));
    assert_int_equal(cap, 1);
    assert_null(ibp_grow(a, &cap, 2, (size_t)PTRDIFF_MAX + 1));
    assert_int_equal(cap, 1);
    assert_int_equal(*a, keep);
    free(a);
}

static void test_grow_near_limit_does_not_wrap(void **state)
{
    (void)state;
    /* A capacity past half of the largest count must not double into a wrap
     * (a wrapped size would allocate a small buffer and return it). */
    size_t cap = SIZE_MAX / 16 / 2 + 1;
    assert_null(ibp_grow(NULL, &cap, cap + 1, 16));
    assert_int_equal(cap, SIZE_MAX / 16 / 2 + 1);
}

static void test_strbuf(void **state)
{
    (void)state;
    ibp_strbuf b = {0};
    assert_true(ibp_strbuf_append(&b, "", 0));
    assert_non_null(b.s);
    assert_string_equal(b.s, "");
    assert_true(ibp_strbuf_append(&b, "abc", 3));
    assert_true(ibp_strbuf_append_str(&b, "de"));
    assert_true(ibp_strbuf_appendf(&b, "-%d-%s", 42, "x"));
    assert_string_equal(b.s, "abcde-42-x");
    assert_int_equal(b.len, 10);
    assert_true(b.cap > b.len);
    for (int i = 0; i < 1000; i++)
        assert_true(ibp_strbuf_appendf(&b, "%04d", i));
    assert_int_equal(b.len, 4010);
    assert_int_equal(strlen(b.s), 4010);
    assert_memory_equal(b.s + 4006, "0999", 4);
    assert_true(ibp_strbuf_append(&b, "a\0b", 3));
    assert_int_equal(b.len, 4013);
    assert_int_equal(b.s[4011], '\0');
    assert_int_equal(b.s[4013], '\0');
    ibp_strbuf_free(&b);
    assert_null(b.s);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
    ibp_strbuf_free(&b);
    ibp_strbuf_free(NULL);
}

static void test_strbuf_too_big(void **state)
{
    (void)state;
    ibp_strbuf b = {0};
    assert_true(ibp_strbuf_append_str(&b, "keep"));
    assert_false(ibp_strbuf_append(&b, "x", SIZE_MAX - 2));
    assert_string_equal(b.s, "keep");
    assert_int_equal(b.len, 4);
    ibp_strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grow_doubles),  cmocka_unit_test(test_grow_from_odd_capacity),
        cmocka_unit_test(test_grow_overflow), cmocka_unit_test(test_grow_near_limit_does_not_wrap),
        cmocka_unit_test(test_strbuf),        cmocka_unit_test(test_strbuf_too_big),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
