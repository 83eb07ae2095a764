/*
 * Integration: hits from real DNS queries (DESIGN.md §7, §12). A dns node
 * behind pdns_server (dns_testlib.h) answers N queries from clients in four
 * countries, over IPv4 and IPv6, plus static and unknown names that carry no
 * dynamic record. Its usage is flushed to HITS every second and persist (in
 * this process) writes it to MariaDB. The dynamic records in the dig answers,
 * per member, country and family, must equal the hits stored in `requests`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns_testlib.h"
#include "ibp/bus.h"
#include "ibp/subject.h"
#include "ibp/log.h"
#include "ibp/persist.h"
#include "persist_testlib.h"

static dns_env env;

typedef struct client {
    const char *subnet, *type, *country;
    int queries;
} client;

typedef struct tally {
    char member[32], country[3];
    int ipv6;
    long long records;
} tally;

static const struct {
    const char *address, *member;
} members[] = {{"10.0.0.1", "Berlin Ops"},   {"10.0.0.2", "Paris Ops"}, {"10.0.0.3", "Tokyo Ops"},
               {"10.0.0.4", "Virginia Ops"}, {"fd00::1", "Berlin Ops"}, {"fd00::2", "Paris Ops"},
               {"fd00::3", "Tokyo Ops"}};

static const char *member_of(const char *address)
{
    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++)
        if (strcmp(members[i].address, address) == 0)
            return members[i].member;
    fail_msg("answer %s is no member's address", address);
    return NULL;
}

static void count(tally *t, size_t *n, const char *member, const char *country, int ipv6)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(t[i].member, member) == 0 && strcmp(t[i].country, country) == 0 &&
            t[i].ipv6 == ipv6) {
            t[i].records++;
            return;
        }
    snprintf(t[*n].member, sizeof t[*n].member, "%s", member);
    snprintf(t[*n].country, sizeof t[*n].country, "%s", country);
    t[*n].ipv6 = ipv6;
    t[*n].records = 1;
    (*n)++;
}

static void test_hits_equal_answers(void **state)
{
    (void)state;
    static const client clients[] = {
        {"192.0.2.0/24", "A", "DE", 20},      {"198.51.100.0/24", "A", "FR", 15},
        {"203.0.113.0/24", "A", "JP", 12},    {"100.64.1.0/24", "A", "BR", 6},
        {"2001:db8:3::/48", "AAAA", "JP", 7}, {"2001:db8:1::/48", "AAAA", "DE", 5},
    };
    tally t[16];
    size_t nt = 0;
    long long total = 0;
    for (size_t c = 0; c < sizeof clients / sizeof clients[0]; c++) {
        for (int q = 0; q < clients[c].queries; q++) {
            char *out = ibp_test_dns_dig_short(&env, DNS_HOST, clients[c].type, clients[c].subnet);
            /* One dynamic record per answer: count it under the member it names. */
            assert_null(strchr(out, '\n'));
            count(t, &nt, member_of(out), clients[c].country, strcmp(clients[c].type, "AAAA") == 0);
            total++;
            free(out);
        }
        /* Names without dynamic records count nothing. */
        free(ibp_test_dns_dig_short(&env, "www." DNS_ZONE, "A", clients[c].subnet));
        free(ibp_test_dns_dig_short(&env, "nothere." DNS_ZONE, "A", clients[c].subnet));
        free(ibp_test_dns_dig_short(&env, DNS_ZONE, "SOA", clients[c].subnet));
    }

    /* persist in this process, on the real HITS stream, into a database of its own. */
    char db_name[96];
    ibp_testenv_unique_name("dnshits", db_name, sizeof db_name);
    MYSQL *db = pt_db_create(&env.servers.env, db_name);
    ibp_persist_db_opts dbo;
    pt_db_opts(&env.servers.env, db_name, &dbo);
    ibp_persist_opts o;
    ibp_persist_opts_init(&o);
    o.nc = ibp_test_dns_env_nc();
    o.db = &dbo;
    o.roster = ibp_test_dns_env_roster();
    o.hits_stream = IBP_STREAM_HITS;
    o.events_stream = "";
    o.fetch_wait_ms = 100;
    ibp_persist *p = NULL;
    ibp_err err = {0};
    if (ibp_persist_start(&o, &p, &err) != IBP_OK)
        fail_msg("persist: %s", err.msg);

    long long stored = 0;
    for (int i = 0; i < 300 && stored < total; i++) {
        pt_sleep_ms(100);
        stored = pt_db_int(db, "SELECT CAST(COALESCE(SUM(hits), 0) AS SIGNED) FROM requests");
    }
    pt_sleep_ms(1500); /* one more flush: nothing beyond the answers may arrive */
    stored = pt_db_int(db, "SELECT CAST(COALESCE(SUM(hits), 0) AS SIGNED) FROM requests");
    char *rows = pt_db_dump(db, "SELECT member_name, country_code, is_ipv6, hits, domain_name, "
                                "node_id FROM requests ORDER BY 1, 2, 3");
    printf("answered %lld dynamic records; stored hits %lld\n%s\n", total, stored, rows);
    assert_int_equal(stored, total);
    for (size_t i = 0; i < nt; i++) {
        long long h = pt_db_int(db,
                                "SELECT CAST(COALESCE(SUM(hits), 0) AS SIGNED) FROM requests "
                                "WHERE member_name = '%s' AND country_code = '%s' AND is_ipv6 = "
                                "%d AND domain_name = '%s' AND node_id = 'dns1'",
                                t[i].member, t[i].country, t[i].ipv6, DNS_HOST);
        if (h != t[i].records)
            fail_msg("%s %s ipv%d: %lld records answered, %lld hits stored", t[i].member,
                     t[i].country, t[i].ipv6 ? 6 : 4, t[i].records, h);
    }
    free(rows);
    ibp_persist_stop(p);
    mysql_close(db);
    pt_db_drop(&env.servers.env, db_name);
}

static int group_setup(void **state)
{
    (void)state;
    dns_env_opts o = {.usage_flush_ms = 1000};
    ibp_test_dns_env_start(&env, &o);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    ibp_test_dns_env_stop(&env);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hits_equal_answers),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
