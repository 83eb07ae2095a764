/* Unit tests: the portable hash and the hash index (ibp/hash_index.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/hash_index.h"

/* The vote engine's digests are built on these bits: they must never change. */
static void test_hash_is_stable(void **state)
{
    (void)state;
    assert_int_equal(ibp_hash_mix64(0), 0);
    assert_int_equal(ibp_hash_mix64(1), UINT64_C(0xb456bcfc34c2cb2c));
    uint64_t e = ibp_hash_bytes(NULL, 0, 0);
    uint64_t a = ibp_hash_bytes("a", 1, 0);
    uint64_t long_text = ibp_hash_bytes("Stake Plus/rpc.example.org", 26, 7);
    assert_int_equal(e, UINT64_C(0xf490368aba8bfeac));
    assert_int_equal(a, UINT64_C(0x30f61475e71adfde));
    assert_int_equal(long_text, UINT64_C(0xee5f2dfd793cedb2));
    /* Length and seed matter; chaining is unambiguous. */
    assert_true(ibp_hash_bytes("a\0", 2, 0) != a);
    assert_true(ibp_hash_bytes("a", 1, 1) != a);
    assert_true(ibp_hash_bytes("b", 1, ibp_hash_bytes("a", 1, 0)) !=
                ibp_hash_bytes("", 0, ibp_hash_bytes("ab", 2, 0)));
}

/* Records: strings in an array; the index finds them by content. */
struct recs {
    char names[4096][16];
    uint64_t hash[4096];
    bool live[4096];
};

struct probe {
    const struct recs *r;
    const char *name;
};

static bool eq(const void *ctx, uint32_t id)
{
    const struct probe *p = ctx;
    return p->r->live[id] && strcmp(p->r->names[id], p->name) == 0;
}

static uint32_t find(const ibp_hash_index *t, const struct recs *r, const char *name, uint64_t hash)
{
    struct probe p = {r, name};
    return ibp_hash_index_find(t, hash, eq, &p);
}

static void test_index_insert_find_remove(void **state)
{
    (void)state;
    static struct recs r;
    memset(&r, 0, sizeof r);
    ibp_hash_index t;
    assert_true(ibp_hash_index_init(&t, 0));
    for (uint32_t i = 0; i < 4096; i++) {
        snprintf(r.names[i], sizeof r.names[i], "k%u", i);
        /* Every eighth record shares its low 32 bits with another: tags collide. */
        r.hash[i] = ibp_hash_bytes(r.names[i], strlen(r.names[i]), 1);
        if (i % 8 == 1)
            r.hash[i] = (r.hash[i - 1] & 0xFFFFFFFFu) | (r.hash[i] & ~UINT64_C(0xFFFFFFFF));
        assert_true(ibp_hash_index_reserve(&t, 1));
        ibp_hash_index_insert(&t, r.hash[i], i);
        r.live[i] = true;
    }
    assert_int_equal(t.count, 4096);
    assert_true(t.mask + 1 >= 8192);
    for (uint32_t i = 0; i < 4096; i++)
        assert_int_equal(find(&t, &r, r.names[i], r.hash[i]), i);
    assert_int_equal(find(&t, &r, "absent", 42), IBP_HASH_INDEX_NONE);
    /* Remove the odd ones: the rest stay reachable (backward shift keeps clusters whole). */
    for (uint32_t i = 1; i < 4096; i += 2) {
        ibp_hash_index_remove(&t, r.hash[i], i);
        r.live[i] = false;
    }
    assert_int_equal(t.count, 2048);
    for (uint32_t i = 0; i < 4096; i++)
        assert_int_equal(find(&t, &r, r.names[i], r.hash[i]), i % 2 ? IBP_HASH_INDEX_NONE : i);
    /* Re-insert under churn. */
    for (uint32_t i = 1; i < 4096; i += 2) {
        assert_true(ibp_hash_index_reserve(&t, 1));
        ibp_hash_index_insert(&t, r.hash[i], i);
        r.live[i] = true;
    }
    for (uint32_t i = 0; i < 4096; i++)
        assert_int_equal(find(&t, &r, r.names[i], r.hash[i]), i);
    /* Clear keeps the slots and finds nothing. */
    size_t slots = t.mask + 1;
    ibp_hash_index_clear(&t);
    assert_int_equal(t.count, 0);
    assert_int_equal(t.mask + 1, slots);
    for (uint32_t i = 0; i < 4096; i++)
        assert_int_equal(find(&t, &r, r.names[i], r.hash[i]), IBP_HASH_INDEX_NONE);
    ibp_hash_index_insert(&t, r.hash[7], 7);
    assert_int_equal(find(&t, &r, r.names[7], r.hash[7]), 7);
    ibp_hash_index_destroy(&t);
    ibp_hash_index_destroy(&t);
}

static void test_index_reserve_bulk(void **state)
{
    (void)state;
    ibp_hash_index t;
    assert_true(ibp_hash_index_init(&t, 100));
    assert_int_equal(t.mask + 1, 128);
    assert_true(ibp_hash_index_reserve(&t, 64));
    assert_int_equal(t.mask + 1, 128);
    assert_true(ibp_hash_index_reserve(&t, 65));
    assert_int_equal(t.mask + 1, 256);
    /* Beyond 2^32 slots: refused, unchanged. */
    assert_false(ibp_hash_index_reserve(&t, (size_t)1 << 32));
    assert_false(ibp_hash_index_reserve(&t, SIZE_MAX));
    assert_int_equal(t.mask + 1, 256);
    ibp_hash_index_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_is_stable),
        cmocka_unit_test(test_index_insert_find_remove),
        cmocka_unit_test(test_index_reserve_bulk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
