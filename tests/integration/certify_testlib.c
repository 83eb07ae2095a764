/* The in-process consensus cluster of the certification tests; see certify_testlib.h. */
#include "certify_testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ibp/bus.h"
#include "ibp/certificate.h"
#include "replica_testlib.h"

#define CHECK_TIME_MS 1700000000000

void ct_cluster_start(ct_cluster *c, int replicas)
{
    ibp_err err;
    memset(c, 0, sizeof *c);
    assert_true(replicas > 0 && replicas <= CT_REPLICAS_MAX);
    c->replicas = replicas;
    assert_int_equal(ibp_crypto_init(), IBP_OK);
    assert_int_equal(ibp_testenv_mkdtemp(c->dir, sizeof c->dir), 0);
    assert_int_equal(ibp_testenv_private_start(&c->servers), 0);

    rt_must(ibp_roster_new(&c->roster), NULL);
    rt_add_nodes(c->roster, c->dir, "mon", IBP_ROLE_MONITOR, CT_MONITORS, c->mon_key, c->mon);
    rt_add_nodes(c->roster, c->dir, "rep", IBP_ROLE_CONSENSUS, replicas, c->rep_key, c->rep_signer);
    rt_must(ibp_key_generate(&c->dns_key), NULL);
    rt_must(ibp_roster_add(c->roster, "dns1", c->dns_key.pk, IBP_ROLE_DNS, &err), &err);
    char path[1200];
    snprintf(path, sizeof path, "%s/roster.json", c->dir);
    rt_must(ibp_roster_save(c->roster, path, &err), &err);
    snprintf(path, sizeof path, "%s/dns1.key", c->dir);
    rt_must(ibp_key_save(&c->dns_key, path, &err), &err);

    c->nc = ct_connect(c, IBP_TESTENV_NATS_TEST, "test");
    assert_int_equal(natsConnection_JetStream(&c->js, c->nc, NULL), NATS_OK);
    rt_must(ibp_bus_ensure_streams(c->js, NULL, &err), &err);
    /* The replicas log in with the consensus role: they check only its streams. */
    ibp_bus_streams_set_default(ibp_bus_streams_for_roles(IBP_ROLE_CONSENSUS));
    for (int i = 0; i < replicas; i++) {
        c->rep_nc[i] = ct_connect(c, IBP_TESTENV_NATS_CONSENSUS, "replica");
        ct_replica_start(c, i);
    }
}

void ct_cluster_stop(ct_cluster *c)
{
    for (int i = 0; i < c->replicas; i++) {
        ibp_replica_stop(c->rep[i]);
        c->rep[i] = NULL;
        if (c->rep_nc[i]) {
            natsConnection_Close(c->rep_nc[i]);
            natsConnection_Destroy(c->rep_nc[i]);
            c->rep_nc[i] = NULL;
        }
        ibp_signer_free(c->rep_signer[i]);
        c->rep_signer[i] = NULL;
        ibp_key_wipe(&c->rep_key[i]);
    }
    for (int i = 0; i < CT_MONITORS; i++) {
        ibp_signer_free(c->mon[i]);
        c->mon[i] = NULL;
        ibp_key_wipe(&c->mon_key[i]);
    }
    ibp_key_wipe(&c->dns_key);
    jsCtx_Destroy(c->js);
    c->js = NULL;
    if (c->nc) {
        natsConnection_Close(c->nc);
        natsConnection_Destroy(c->nc);
        c->nc = NULL;
    }
    ibp_roster_free(c->roster);
    c->roster = NULL;
    if (c->servers.started)
        ibp_testenv_private_stop(&c->servers);
    if (c->dir[0]) {
        if (getenv("IBP_TEST_KEEP"))
            fprintf(stderr, "kept %s\n", c->dir);
        else
            ibp_testenv_rmtree(c->dir);
        c->dir[0] = '\0';
    }
}

void ct_replica_start(ct_cluster *c, int i)
{
    assert_true(i >= 0 && i < c->replicas);
    assert_null(c->rep[i]);
    ibp_replica_opts o;
    ibp_err err;
    char wd[1200];
    snprintf(wd, sizeof wd, "%s/rep%d", c->dir, i + 1);
    mkdir(wd, 0700);
    ibp_replica_opts_init(&o);
    o.nc = c->rep_nc[i];
    o.roster = c->roster;
    o.signer = c->rep_signer[i];
    o.work_dir = wd;
    o.heartbeat_ms = 200;
    o.state_save_ms = 100000;
    rt_must(ibp_replica_start(&o, &c->rep[i], &err), &err);
}

void ct_replica_stop(ct_cluster *c, int i)
{
    assert_true(i >= 0 && i < c->replicas);
    assert_non_null(c->rep[i]);
    ibp_replica_stop(c->rep[i]);
    c->rep[i] = NULL;
}

natsConnection *ct_connect(ct_cluster *c, ibp_testenv_nats_role role, const char *name)
{
    char url[600];
    natsConnection *nc = NULL;
    ibp_err err;
    assert_int_equal(ibp_testenv_nats_url(&c->servers.env, role, url, sizeof url), 0);
    rt_must(ibp_bus_connect_url(url, name, &nc, &err), &err);
    return nc;
}

uint64_t ct_flip(ct_cluster *c)
{
    c->up = !c->up;
    uint64_t seq = 0;
    for (int i = 0; i < CT_MONITORS; i++)
        seq = rt_observe(c->js, c->mon[i], c->up, ++c->batch_seq, CHECK_TIME_MS, NULL, NULL);
    return seq;
}

uint64_t ct_official_epoch(ct_cluster *c)
{
    uint64_t epochs[256], newest = 0;
    size_t n = rt_official_epochs(c->js, c->roster, epochs, 256, NULL);
    for (size_t i = 0; i < n; i++)
        if (epochs[i] > newest)
            newest = epochs[i];
    return newest;
}

void ct_wait_published(ct_cluster *c, uint64_t epoch)
{
    uint64_t have = 0;
    for (int i = 0; i < 1500; i++) {
        if ((have = ct_official_epoch(c)) >= epoch)
            return;
        rt_sleep_ms(20);
    }
    fail_msg("epoch %" PRIu64 " was not published (newest on OFFICIAL: %" PRIu64 ")", epoch, have);
}

size_t ct_signers(ct_cluster *c, uint64_t epoch)
{
    ibp_certificate_result r;
    rt_certify_epoch(c->js, c->roster, epoch, 1, &r);
    return r.signers;
}
