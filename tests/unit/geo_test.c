/* Unit tests: MaxMind geo lookups (generated test DBs, shared fixtures when present). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ibp/geo.h"
#include "ibp/log.h"
#include "test_util.h"

#define MMDB(name) IBP_TEST_MMDB_DIR "/" name
#define FIXTURES IBP_SHARED_DIR "/fixtures/mmdb"

static ibp_geo *open_geo(const char *city, const char *country, const char *asn)
{
    ibp_geo_opts o;
    ibp_geo *g = NULL;
    ibp_err err;
    ibp_geo_opts_init(&o);
    o.city_db = city;
    o.country_db = country;
    o.asn_db = asn;
    ibp_status st = ibp_geo_open(&o, &g, &err);
    if (st != IBP_OK)
        fail_msg("ibp_geo_open: %s", err.msg);
    return g;
}

static void expect(const ibp_geo *g, const char *ip, ibp_status want_st, const char *cc,
                   const char *cname, const char *asn, const char *net)
{
    ibp_geo_info gi;
    memset(&gi, 'x', sizeof gi); /* every field must be written */
    ibp_status st = ibp_geo_lookup(g, ip, &gi);
    if (st != want_st)
        fail_msg("%s: status %s, want %s", ip ? ip : "(null)", ibp_status_name(st),
                 ibp_status_name(want_st));
    assert_string_equal(gi.country_code, cc);
    assert_string_equal(gi.country_name, cname);
    assert_string_equal(gi.asn, asn);
    assert_string_equal(gi.network_name, net);
}

static void test_city_and_asn(void **state)
{
    (void)state;
    ibp_geo *g = open_geo(MMDB("test-city.mmdb"), NULL, MMDB("test-asn.mmdb"));
    assert_true(ibp_geo_enabled(g));
    expect(g, "192.0.2.1", IBP_OK, "DE", "Germany", "AS64500", "Example Net");
    expect(g, "::ffff:192.0.2.77", IBP_OK, "DE", "Germany", "AS64500", "Example Net");
    /* iso_code "XYZ" is not two letters; ASN without organisation. */
    expect(g, "198.51.100.7", IBP_OK, "??", "Unknown", "AS64501", "");
    /* Two letters but no English name. */
    expect(g, "203.0.113.5", IBP_OK, "FR", "", "", "");
    /* A record without a country. */
    expect(g, "203.0.113.200", IBP_OK, "??", "Unknown", "", "");
    expect(g, "2001:db8:1::1", IBP_OK, "NL", "Netherlands", "AS64502", "Example v6 Net");
    /* Lower-case code in the DB. */
    expect(g, "2001:db8:2:ffff::5", IBP_OK, "SE", "Sweden", "", "");
    /* In the ASN DB only (no Country DB open); a 32-bit ASN. */
    expect(g, "198.18.0.1", IBP_OK, "??", "Unknown", "AS4200000000", "Big ASN");
    expect(g, "10.1.2.3", IBP_OK, "??", "Unknown", "", "");
    expect(g, "2001:db8:3::1", IBP_OK, "??", "Unknown", "", "");
    ibp_geo_close(g);
}

static void test_bad_addresses(void **state)
{
    (void)state;
    ibp_geo *g = open_geo(MMDB("test-city.mmdb"), NULL, MMDB("test-asn.mmdb"));
    const char *bad[] = {
        "",        "not-an-ip",  "192.0.2",    "192.0.2.1.5",  "192.0.2.256", "::g",
        "1::2::3", " 192.0.2.1", "192.0.2.1 ", "fe80::1%eth0", "192.0.2.1/24"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect(g, bad[i], IBP_E_INVAL, "??", "Unknown", "", "");
    expect(g, NULL, IBP_E_INVAL, "??", "Unknown", "", "");
    char longip[200];
    memset(longip, '1', sizeof longip - 1);
    longip[sizeof longip - 1] = '\0';
    expect(g, longip, IBP_E_INVAL, "??", "Unknown", "", "");
    ibp_geo_ref ref = {7, 7};
    assert_int_equal(ibp_geo_lookup_ref(g, "nope", &ref), IBP_E_INVAL);
    assert_true(ref.country == 0 && ref.asn == 0);
    ibp_geo_close(g);
}

static void test_country_db_and_fallback(void **state)
{
    (void)state;
    /* Country DB alone. */
    ibp_geo *g = open_geo(NULL, MMDB("test-country.mmdb"), NULL);
    expect(g, "192.0.2.1", IBP_OK, "AT", "Austria", "", "");
    expect(g, "2001:db8:1::9", IBP_OK, "BE", "Belgium", "", "");
    expect(g, "198.51.100.7", IBP_OK, "??", "Unknown", "", "");
    ibp_geo_close(g);
    /* Both: the City DB answers what it knows, the Country DB the rest. */
    g = open_geo(MMDB("test-city.mmdb"), MMDB("test-country.mmdb"), NULL);
    expect(g, "192.0.2.1", IBP_OK, "DE", "Germany", "", "");
    expect(g, "198.18.0.1", IBP_OK, "CH", "Switzerland", "", "");
    ibp_geo_close(g);
}

static void test_ipv4_only_db(void **state)
{
    (void)state;
    ibp_geo *g = open_geo(MMDB("test-city-v4.mmdb"), NULL, NULL);
    expect(g, "192.0.2.1", IBP_OK, "DE", "Germany", "", "");
    expect(g, "::ffff:192.0.2.1", IBP_OK, "DE", "Germany", "", "");
    /* An IPv6 address in an IPv4 database is "not found", not an error. */
    expect(g, "2001:db8:1::1", IBP_OK, "??", "Unknown", "", "");
    ibp_geo_close(g);
}

static void test_no_geo(void **state)
{
    (void)state;
    ibp_geo *g = open_geo(NULL, "", NULL);
    assert_false(ibp_geo_enabled(g));
    expect(g, "192.0.2.1", IBP_OK, "??", "Unknown", "", "");
    expect(g, "bad", IBP_E_INVAL, "??", "Unknown", "", "");
    ibp_geo_close(g);
    /* A NULL geo behaves the same. */
    assert_false(ibp_geo_enabled(NULL));
    expect(NULL, "2001:db8:1::1", IBP_OK, "??", "Unknown", "", "");
    ibp_geo_close(NULL);
}

static void test_refs(void **state)
{
    (void)state;
    ibp_geo *g = open_geo(MMDB("test-city.mmdb"), MMDB("test-country.mmdb"), MMDB("test-asn.mmdb"));
    ibp_geo_ref a, b, c, d;
    assert_int_equal(ibp_geo_lookup_ref(g, "192.0.2.1", &a), IBP_OK);
    assert_int_equal(ibp_geo_lookup_ref(g, "192.0.2.200", &b), IBP_OK);
    assert_int_equal(ibp_geo_lookup_ref(g, "198.18.0.1", &c), IBP_OK);
    assert_int_equal(ibp_geo_lookup_ref(g, "10.0.0.1", &d), IBP_OK);
    /* Same network, same records. */
    assert_true(a.country == b.country && a.asn == b.asn);
    assert_true(a.country != 0 && a.asn != 0);
    /* The Country DB fallback is a different source. */
    assert_true(c.country != 0 && c.country != a.country);
    assert_true(d.country == 0 && d.asn == 0);
    ibp_geo_info gi;
    assert_int_equal(ibp_geo_resolve(g, &c, &gi), IBP_OK);
    assert_string_equal(gi.country_code, "CH");
    assert_string_equal(gi.network_name, "Big ASN");
    /* A ref that points nowhere is a database error, answered as unknown. */
    ibp_geo_ref junk = {UINT64_C(0xFF) << 40 | 5, UINT64_C(0x7) << 40 | 5};
    assert_int_equal(ibp_geo_resolve(g, &junk, &gi), IBP_E_IO);
    assert_string_equal(gi.country_code, "??");
    assert_string_equal(gi.country_name, "Unknown");
    assert_string_equal(gi.asn, "");
    ibp_geo_close(g);
}

static void expect_refused(const char *city, const char *asn, ibp_status want, const char *path,
                           const char *text)
{
    ibp_geo_opts o;
    ibp_geo *g = NULL;
    ibp_err err;
    ibp_geo_opts_init(&o);
    o.city_db = city;
    o.asn_db = asn;
    ibp_status st = ibp_geo_open(&o, &g, &err);
    if (st != want)
        fail_msg("%s: status %s, want %s (%s)", path, ibp_status_name(st), ibp_status_name(want),
                 st == IBP_OK ? "" : err.msg);
    assert_null(g);
    assert_non_null(strstr(err.msg, path));
    if (text && !strstr(err.msg, text))
        fail_msg("\"%s\" does not say \"%s\"", err.msg, text);
}

static void copy_file(const char *from, const char *to, size_t max_len)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0 && total < max_len) {
        if (n > max_len - total)
            n = max_len - total;
        fwrite(buf, 1, n, out);
        total += n;
    }
    fclose(in);
    fclose(out);
}

static void test_missing_and_invalid_files(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    test_path(path, sizeof path, dir, "missing.mmdb");
    expect_refused(path, NULL, IBP_E_IO, path, "No such file");
    expect_refused(NULL, path, IBP_E_IO, path, "ASN DB");
    expect_refused(dir, NULL, IBP_E_IO, dir, "not a regular file");
    test_path(path, sizeof path, dir, "text.mmdb");
    test_write(path, "this is not a MaxMind database\n", 0644);
    /* libmaxminddb's own reason is in the message. */
    expect_refused(path, NULL, IBP_E_CONFIG, path, "invalid metadata");
    test_path(path, sizeof path, dir, "empty.mmdb");
    test_write(path, "", 0644);
    expect_refused(NULL, path, IBP_E_CONFIG, path, "empty file");
    /* Cut in half: the metadata at the end is gone. */
    test_path(path, sizeof path, dir, "half.mmdb");
    copy_file(MMDB("test-city.mmdb"), path, 1000);
    expect_refused(path, NULL, IBP_E_CONFIG, path, "not a valid MaxMind DB");
    /* A good City DB does not make a bad ASN DB acceptable; nothing leaks. */
    test_path(path, sizeof path, dir, "missing-asn.mmdb");
    expect_refused(MMDB("test-city.mmdb"), path, IBP_E_IO, path, NULL);

    ibp_geo *g = NULL;
    ibp_err err;
    assert_int_equal(ibp_geo_open(NULL, &g, &err), IBP_E_INVAL);
    test_rmdir(dir);
}

/* Overwrites bytes of a copy of a good DB: refused at open or answered as "??", never a crash. */
static void test_damaged_copies(void **state)
{
    (void)state;
    char *dir = test_tmpdir();
    char path[4200];
    test_path(path, sizeof path, dir, "damaged.mmdb");
    struct stat sb;
    assert_int_equal(stat(MMDB("test-city.mmdb"), &sb), 0);
    int refused = 0, opened = 0;
    for (long off = 0; off < sb.st_size; off += 7) {
        copy_file(MMDB("test-city.mmdb"), path, (size_t)sb.st_size);
        FILE *f = fopen(path, "r+b");
        assert_non_null(f);
        fseek(f, off, SEEK_SET);
        fputc(0xFF, f);
        fputc(0x7F, f);
        fclose(f);
        ibp_geo_opts o;
        ibp_geo *g = NULL;
        ibp_err err;
        ibp_geo_opts_init(&o);
        o.city_db = path;
        ibp_status st = ibp_geo_open(&o, &g, &err);
        if (st != IBP_OK) {
            assert_true(st == IBP_E_CONFIG || st == IBP_E_IO);
            assert_non_null(strstr(err.msg, path));
            refused++;
            continue;
        }
        opened++;
        const char *ips[] = {"192.0.2.1",     "198.51.100.7",  "203.0.113.5", "203.0.113.200",
                             "2001:db8:1::1", "2001:db8:2::5", "10.0.0.1",    "::1"};
        for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
            ibp_geo_info gi;
            ibp_geo_lookup(g, ips[i], &gi);
            assert_int_equal(strlen(gi.country_code), 2);
        }
        ibp_geo_close(g);
    }
    print_message("damaged copies: %d refused, %d opened\n", refused, opened);
    assert_true(refused > 0);
    test_rmdir(dir);
}

static int have_fixtures(void)
{
    struct stat sb;
    return stat(FIXTURES "/GeoIP2-City-Test.mmdb", &sb) == 0;
}

static void test_maxmind_fixtures(void **state)
{
    (void)state;
    if (!have_fixtures()) {
        print_message("no fixtures at %s\n", FIXTURES);
        skip();
    }
    ibp_geo *g = open_geo(FIXTURES "/GeoIP2-City-Test.mmdb", FIXTURES "/GeoLite2-Country-Test.mmdb",
                          FIXTURES "/GeoLite2-ASN-Test.mmdb");
    ibp_geo_info gi;
    assert_int_equal(ibp_geo_lookup(g, "81.2.69.142", &gi), IBP_OK);
    assert_string_equal(gi.country_code, "GB");
    assert_string_equal(gi.country_name, "United Kingdom");
    assert_int_equal(ibp_geo_lookup(g, "2001:218::", &gi), IBP_OK);
    assert_string_equal(gi.country_code, "JP");
    assert_string_equal(gi.country_name, "Japan");
    expect(g, "1.128.0.0", IBP_OK, "??", "Unknown", "AS1221", "Telstra Pty Ltd");
    ibp_geo_close(g);
    /* The City DB alone gives the same country. */
    g = open_geo(FIXTURES "/GeoLite2-City-Test.mmdb", NULL, NULL);
    assert_int_equal(ibp_geo_lookup(g, "81.2.69.142", &gi), IBP_OK);
    assert_string_equal(gi.country_code, "GB");
    ibp_geo_close(g);
}

/* Every file in bad/ is refused cleanly or, if it opens, answers without crashing. */
static void test_bad_fixtures(void **state)
{
    (void)state;
    DIR *d = opendir(FIXTURES "/bad");
    if (!d) {
        print_message("no fixtures at %s/bad\n", FIXTURES);
        skip();
    }
    const char *ips[] = {"1.1.1.1",
                         "81.2.69.142",
                         "1.128.0.0",
                         "2001:218::",
                         "::1",
                         "255.255.255.255",
                         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                         "0.0.0.0",
                         "::"};
    struct dirent *de;
    int files = 0, refused = 0;
    while ((de = readdir(d)) != NULL) {
        if (!strstr(de->d_name, ".mmdb"))
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/bad/%s", FIXTURES, de->d_name);
        files++;
        for (int role = 0; role < 2; role++) {
            ibp_geo_opts o;
            ibp_geo *g = NULL;
            ibp_err err;
            ibp_geo_opts_init(&o);
            if (role == 0)
                o.city_db = path;
            else
                o.asn_db = path;
            ibp_status st = ibp_geo_open(&o, &g, &err);
            if (st != IBP_OK) {
                if (st != IBP_E_CONFIG && st != IBP_E_IO)
                    fail_msg("%s: %s", path, ibp_status_name(st));
                assert_non_null(strstr(err.msg, path));
                if (role == 0) {
                    refused++;
                    print_message("refused: %s\n", err.msg);
                }
                continue;
            }
            if (role == 0)
                print_message("opened:  %s\n", path);
            for (size_t i = 0; i < sizeof ips / sizeof ips[0]; i++) {
                ibp_geo_info gi;
                ibp_geo_lookup(g, ips[i], &gi);
                assert_int_equal(strlen(gi.country_code), 2);
            }
            ibp_geo_close(g);
        }
    }
    closedir(d);
    print_message("bad fixtures: %d files, %d refused\n", files, refused);
    assert_true(files > 0);
}

int main(void)
{
    ibp_log_set_level(IBP_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_city_and_asn),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_country_db_and_fallback),
        cmocka_unit_test(test_ipv4_only_db),
        cmocka_unit_test(test_no_geo),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_missing_and_invalid_files),
        cmocka_unit_test(test_damaged_copies),
        cmocka_unit_test(test_maxmind_fixtures),
        cmocka_unit_test(test_bad_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
