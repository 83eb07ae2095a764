/*
 * A dns node behind a real pdns_server; see dns_testlib.h.
 */
#include "dns_testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ibp/bus.h"
#include "ibp/key.h"
#include "ibp/log.h"
#include "ibp/replica.h"
#include "ibp/roster.h"
#include "ibp/subject.h"

#define MONITORS 3

static ibp_roster *roster;
static ibp_key mon_key[MONITORS], rep_key[2], dns_key, ops_key;
static ibp_signer *mon[MONITORS], *rep_signer[2], *ops;
static natsConnection *pub_nc, *rep_nc[2];
static jsCtx *js;
static ibp_replica *reps[2];
static uint64_t batch_seq;
static const char *base_dir;
static dns_env *cur;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void must(ibp_status st, const ibp_err *err)
{
    if (st != IBP_OK)
        fail_msg("%s: %s", ibp_status_name(st), err ? err->msg : "");
}

int ibp_test_dns_sh(char **out, const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    FILE *p = popen(cmd, "r");
    if (!p)
        fail_msg("popen %s", cmd);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0) {
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            buf = realloc(buf, cap);
        }
        memcpy(buf + len, chunk, n);
        len += n;
    }
    if (!buf)
        buf = calloc(1, 1);
    buf[len] = '\0';
    int st = pclose(p);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static unsigned free_port(void)
{
    char *out;
    const char *bin = getenv("IBP_TEST_FREEPORT");
    if (!bin)
        fail_msg("IBP_TEST_FREEPORT is not set");
    assert_int_equal(ibp_test_dns_sh(&out, "%s", bin), 0);
    unsigned p = (unsigned)strtoul(out, NULL, 10);
    free(out);
    assert_true(p > 0);
    return p;
}

static ibp_signer *make_signer(const char *id, ibp_key *key, unsigned roles)
{
    char path[1200];
    ibp_signer *s;
    ibp_err err;
    ibp_key_generate(key);
    must(ibp_roster_add(roster, id, key->pk, roles, &err), &err);
    snprintf(path, sizeof path, "%s/%s.seq", base_dir, id);
    must(ibp_signer_new(id, key, path, &s, &err), &err);
    return s;
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[1300];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static const char members_json[] =
    "{\n"
    "\"Berlin Ops\": {\"Details\": {\"Name\": \"Berlin Ops\"}, \"Membership\": {\"MemberLevel\": "
    "5},\n"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.1\", \"ServiceIPv6\": \"fd00::1\"},\n"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},\n"
    "  \"Location\": {\"Region\": \"Europe\", \"Latitude\": 52.52, \"Longitude\": 13.40}},\n"
    "\"Paris Ops\": {\"Details\": {\"Name\": \"Paris Ops\"}, \"Membership\": {\"MemberLevel\": "
    "5},\n"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.2\", \"ServiceIPv6\": \"fd00::2\"},\n"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},\n"
    "  \"Location\": {\"Region\": \"Europe\", \"Latitude\": 48.86, \"Longitude\": 2.35}},\n"
    "\"Tokyo Ops\": {\"Details\": {\"Name\": \"Tokyo Ops\"}, \"Membership\": {\"MemberLevel\": "
    "5},\n"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.3\", \"ServiceIPv6\": \"fd00::3\"},\n"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},\n"
    "  \"Location\": {\"Region\": \"Asia\", \"Latitude\": 35.68, \"Longitude\": 139.69}},\n"
    "\"Virginia Ops\": {\"Details\": {\"Name\": \"Virginia Ops\"}, \"Membership\": "
    "{\"MemberLevel\": 5},\n"
    "  \"Service\": {\"Active\": 1, \"ServiceIPv4\": \"10.0.0.4\", \"ServiceIPv6\": \"\"},\n"
    "  \"ServiceAssignments\": {\"Polkadot\": [\"Polkadot\"]},\n"
    "  \"Location\": {\"Region\": \"America\", \"Latitude\": 38.90, \"Longitude\": -77.04}}\n"
    "}\n";
static const char services_json[] =
    "{\"Polkadot\": {\"Configuration\": {\"Name\": \"Polkadot\", \"ServiceType\": \"RPC\",\n"
    "  \"Active\": 1, \"LevelRequired\": 3, \"NetworkName\": \"Polkadot\"},\n"
    "  \"Providers\": {\"Ibp\": {\"RpcUrls\": [\"wss://" DNS_HOST "/polkadot\"]}}}}\n";
static const char static_json[] =
    "[\n"
    " {\"qname\": \"ibp.test\", \"qtype\": \"NS\", \"content\": \"ns1.ibp.test.\", \"ttl\": 3600,"
    " \"auth\": true, \"domain_id\": 0},\n"
    " {\"qname\": \"ibp.test\", \"qtype\": \"NS\", \"content\": \"ns2.ibp.test.\", \"ttl\": 3600,"
    " \"auth\": true, \"domain_id\": 0},\n"
    " {\"qname\": \"ns1.ibp.test\", \"qtype\": \"A\", \"content\": \"192.0.2.53\", \"ttl\": 3600,"
    " \"auth\": true, \"domain_id\": 0},\n"
    " {\"qname\": \"www.ibp.test\", \"qtype\": \"A\", \"content\": \"192.0.2.80\", \"ttl\": 300,"
    " \"auth\": true, \"domain_id\": 0},\n"
    " {\"qname\": \"www.ibp.test\", \"qtype\": \"TXT\", \"content\": \"\\\"hello\\\"\", \"ttl\": 0,"
    " \"auth\": true, \"domain_id\": 0},\n"
    " {\"qname\": \"_acme-challenge.deep.ibp.test\", \"qtype\": \"TXT\", \"content\": "
    "\"\\\"token\\\"\", \"ttl\": 0, \"auth\": true, \"domain_id\": 0}\n"
    "]\n";

static void start_replicas(void)
{
    ibp_err err;
    for (int i = 0; i < 2; i++) {
        ibp_replica_opts o;
        char wd[1200];
        snprintf(wd, sizeof wd, "%s/rep%d", base_dir, i + 1);
        mkdir(wd, 0700);
        must(ibp_bus_connect_url(cur->servers.env.nats_auth_url, "replica", &rep_nc[i], &err),
             &err);
        ibp_replica_opts_init(&o);
        o.nc = rep_nc[i];
        o.roster = roster;
        o.signer = rep_signer[i];
        o.work_dir = wd;
        o.heartbeat_ms = 200;
        must(ibp_replica_start(&o, &reps[i], &err), &err);
    }
}

const struct ibp_roster *ibp_test_dns_env_roster(void)
{
    return roster;
}

natsConnection *ibp_test_dns_env_nc(void)
{
    return pub_nc;
}

/* Sends one JSON line to the node's control socket; returns the answer (caller decrefs). */
static json_t *control(const dns_env *e, const char *line)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(e->control) >= sizeof sa.sun_path)
        fail_msg("control socket path too long: %s", e->control);
    memcpy(sa.sun_path, e->control, strlen(e->control) + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    char buf[65536];
    size_t len = 0;
    json_t *j = NULL;
    if (write(fd, line, strlen(line)) == (ssize_t)strlen(line) && write(fd, "\n", 1) == 1) {
        ssize_t r;
        while (len < sizeof buf - 1 && (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0) {
            len += (size_t)r;
            if (memchr(buf, '\n', len))
                break;
        }
        buf[len] = '\0';
        j = json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
    }
    close(fd);
    return j;
}

static void wait_path(const char *path, const char *what, pid_t pid)
{
    for (int i = 0; i < 300; i++) {
        if (access(path, F_OK) == 0)
            return;
        if (pid > 0 && kill(pid, 0) != 0)
            break;
        sleep_ms(50);
    }
    fail_msg("%s did not appear (%s); see the logs in %s", path, what, base_dir);
}

static pid_t start_pdns(dns_env *e, const char *name, unsigned port, const char *conn,
                        const char *extra)
{
    char dir[1300], conf[1400], log[1400];
    snprintf(dir, sizeof dir, "%s/%s", e->dir, name);
    if (ibp_test_dns_sh(NULL, "bash '%s/deploy/local/pdns.sh' render '%s' %u '%s'", IBP_SOURCE_DIR,
                        dir, port, conn) != 0)
        fail_msg("deploy/local/pdns.sh render failed");
    if (extra) {
        snprintf(conf, sizeof conf, "%s/pdns.conf", dir);
        FILE *f = fopen(conf, "a");
        assert_non_null(f);
        fprintf(f, "%s\n", extra);
        fclose(f);
    }
    snprintf(conf, sizeof conf, "--config-dir=%s", dir);
    snprintf(log, sizeof log, "%s/pdns.log", dir);
    char *argv[] = {"/usr/sbin/pdns_server", conf, NULL};
    pid_t pid = ibp_testenv_spawn(argv, log, NULL);
    assert_true(pid > 0);
    for (int i = 0; i < 150; i++) {
        char *out = NULL;
        int rc = ibp_test_dns_sh(&out, "dig +tries=1 +time=1 -p %u @127.0.0.1 %s SOA +short", port,
                                 DNS_ZONE);
        bool ok = rc == 0 && strstr(out, "hostmaster." DNS_ZONE ".") != NULL;
        free(out);
        if (ok)
            return pid;
        if (kill(pid, 0) != 0)
            break;
        sleep_ms(100);
    }
    fail_msg("pdns_server on port %u did not answer; see %s", port, log);
    return -1;
}

void ibp_test_dns_env_start(dns_env *e, const dns_env_opts *o)
{
    ibp_err err;
    memset(e, 0, sizeof *e);
    cur = e;
    batch_seq = 0;
    ibp_log_set_level(IBP_LOG_ERROR);
    assert_int_equal(ibp_crypto_init(), IBP_OK);
    assert_int_equal(ibp_testenv_mkdtemp(e->dir, sizeof e->dir), 0);
    base_dir = e->dir;
    assert_int_equal(ibp_testenv_private_start(&e->servers), 0);

    must(ibp_roster_new(&roster), NULL);
    for (int i = 0; i < MONITORS; i++) {
        char id[16];
        snprintf(id, sizeof id, "mon%d", i + 1);
        mon[i] = make_signer(id, &mon_key[i], IBP_ROLE_MONITOR);
    }
    rep_signer[0] = make_signer("rep1", &rep_key[0], IBP_ROLE_CONSENSUS);
    rep_signer[1] = make_signer("rep2", &rep_key[1], IBP_ROLE_CONSENSUS);
    ops = make_signer("ops", &ops_key, IBP_ROLE_ADMIN);
    ibp_key_generate(&dns_key);
    must(ibp_roster_add(roster, "dns1", dns_key.pk, IBP_ROLE_DNS, &err), &err);
    char path[1300];
    snprintf(path, sizeof path, "%s/roster.json", e->dir);
    must(ibp_roster_save(roster, path, &err), &err);
    snprintf(path, sizeof path, "%s/dns1.key", e->dir);
    must(ibp_key_save(&dns_key, path, &err), &err);
    write_file(e->dir, "members.json", members_json);
    write_file(e->dir, "services.json", services_json);
    write_file(e->dir, "static.json", static_json);

    must(ibp_bus_connect_url(e->servers.env.nats_auth_url, "test", &pub_nc, &err), &err);
    assert_int_equal(natsConnection_JetStream(&js, pub_nc, NULL), NATS_OK);
    must(ibp_bus_ensure_streams(js, NULL, &err), &err);
    start_replicas();

    /* The dns node. */
    char nats[2048];
    assert_int_equal(
        ibp_testenv_nats_json(&e->servers.env, IBP_TESTENV_NATS_DNS, nats, sizeof nats), 0);
    e->http_port = free_port();
    snprintf(e->work, sizeof e->work, "%s/dns1", e->dir);
    snprintf(e->control, sizeof e->control, "%s/control.sock", e->work);
    snprintf(e->socket, sizeof e->socket, "%s/dns-backend.sock", e->work);
    char usage[64] = "";
    if (o && o->usage_flush_ms)
        snprintf(usage, sizeof usage, ", \"usage_flush_ms\": %d", o->usage_flush_ms);
    snprintf(path, sizeof path, "%s/node.json", e->dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f,
            "{\"node\": {\"id\": \"dns1\", \"key_file\": \"%s/dns1.key\", \"roster_file\": "
            "\"%s/roster.json\", \"work_dir\": \"%s\", \"roles\": \"dns\"},\n"
            " %s,\n"
            " \"maxmind\": {\"city_db\": \"%s/dns-city.mmdb\"},\n"
            " \"network\": {\"members_file\": \"%s/members.json\",\n"
            "             \"services_file\": \"%s/services.json\"},\n"
            " \"intervals\": {\"heartbeat_ms\": 500%s},\n"
            " \"dns\": {\"static_records_file\": \"%s/static.json\", \"http_port\": %u,\n"
            "         \"http_threads\": 2, \"country_overrides\": %s},\n"
            " \"log\": {\"level\": \"info\"}}\n",
            e->dir, e->dir, e->work, nats, IBP_DNS_MMDB_DIR, e->dir, e->dir, usage, e->dir,
            e->http_port, o && o->country_overrides_json ? o->country_overrides_json : "[]");
    assert_int_equal(fclose(f), 0);
    char log[1300];
    snprintf(log, sizeof log, "%s/node.log", e->dir);
    char *argv[] = {(char *)IBP_NODE_BIN, "--config", path, NULL};
    e->node_pid = ibp_testenv_spawn(argv, log, NULL);
    assert_true(e->node_pid > 0);
    wait_path(e->socket, "the dns node's backend socket", e->node_pid);
    wait_path(e->control, "the dns node's control socket", e->node_pid);

    char conn[1400];
    e->dns_port = free_port();
    snprintf(conn, sizeof conn, "unix:path=%s", e->socket);
    e->pdns_pid = start_pdns(e, "pdns", e->dns_port, conn, o ? o->pdns_extra : NULL);
    if (o && o->http_pdns) {
        e->dns_port_http = free_port();
        snprintf(conn, sizeof conn, "http:url=http://127.0.0.1:%u/dns,post=1,post_json=1",
                 e->http_port);
        e->pdns_http_pid = start_pdns(e, "pdns-http", e->dns_port_http, conn, NULL);
    }
}

void ibp_test_dns_env_stop(dns_env *e)
{
    if (e->pdns_http_pid > 0)
        ibp_testenv_kill_wait(e->pdns_http_pid, SIGTERM, 10000, NULL);
    if (e->pdns_pid > 0)
        ibp_testenv_kill_wait(e->pdns_pid, SIGTERM, 10000, NULL);
    if (e->node_pid > 0) {
        int st = 0;
        ibp_testenv_kill_wait(e->node_pid, SIGTERM, 20000, &st);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fprintf(stderr, "dns node exit status %d\n", st);
    }
    for (int i = 0; i < 2; i++) {
        ibp_replica_stop(reps[i]);
        reps[i] = NULL;
        if (rep_nc[i]) {
            natsConnection_Close(rep_nc[i]);
            natsConnection_Destroy(rep_nc[i]);
            rep_nc[i] = NULL;
        }
        ibp_signer_free(rep_signer[i]);
        rep_signer[i] = NULL;
    }
    for (int i = 0; i < MONITORS; i++) {
        ibp_signer_free(mon[i]);
        mon[i] = NULL;
    }
    ibp_signer_free(ops);
    ops = NULL;
    jsCtx_Destroy(js);
    js = NULL;
    if (pub_nc) {
        natsConnection_Close(pub_nc);
        natsConnection_Destroy(pub_nc);
        pub_nc = NULL;
    }
    ibp_roster_free(roster);
    roster = NULL;
    ibp_testenv_private_stop(&e->servers);
    if (!getenv("IBP_DNS_TEST_KEEP"))
        ibp_testenv_rmtree(e->dir);
    else
        fprintf(stderr, "kept %s\n", e->dir);
}

char *ibp_test_dns_dig_short(const dns_env *e, const char *name, const char *type,
                             const char *subnet)
{
    char *out = NULL;
    char sub[128] = "";
    if (subnet)
        snprintf(sub, sizeof sub, "+subnet=%s", subnet);
    int rc = ibp_test_dns_sh(&out, "dig +short +tries=2 +time=2 -p %u @127.0.0.1 %s %s %s",
                             e->dns_port, sub, name, type);
    if (rc != 0)
        fail_msg("dig %s %s %s failed (%d): %s", name, type, sub, rc, out);
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    return out;
}

static void publish(ibp_signer *s, ibp_payload_type type, const ProtobufCMessage *payload)
{
    uint8_t *msg;
    size_t len;
    uint64_t seq;
    ibp_err err;
    char subject[128];
    ibp_subject_local(ibp_signer_id(s), subject, sizeof subject);
    must(ibp_signer_seal(s, type, payload, 1, &msg, &len, &seq, &err), &err);
    must(ibp_bus_publish_envelope(js, subject, type, ibp_signer_id(s), seq, msg, len, NULL, 0, NULL,
                                  NULL, &err),
         &err);
    free(msg);
}

void ibp_test_dns_observe_all(dns_env *e, const char *type, const char *check, const char *member,
                              const char *domain, bool ipv6, bool up)
{
    (void)e;
    Ibp__V1__ResultKey k = IBP__V1__RESULT_KEY__INIT;
    k.check_type = strcmp(type, "site") == 0     ? IBP__V1__CHECK_TYPE__CHECK_TYPE_SITE
                   : strcmp(type, "domain") == 0 ? IBP__V1__CHECK_TYPE__CHECK_TYPE_DOMAIN
                                                 : IBP__V1__CHECK_TYPE__CHECK_TYPE_ENDPOINT;
    k.check_name = (char *)check;
    k.member = (char *)member;
    k.domain = (char *)(domain ? domain : "");
    k.endpoint = "";
    k.ipv6 = ipv6;
    Ibp__V1__Observation ob = IBP__V1__OBSERVATION__INIT;
    ob.key = &k;
    ob.status = up ? IBP__V1__STATUS__STATUS_UP : IBP__V1__STATUS__STATUS_DOWN;
    ob.check_time_ms = (int64_t)time(NULL) * 1000;
    ob.error = up ? "" : "connect timeout";
    Ibp__V1__Observation *list[] = {&ob};
    for (int i = 0; i < MONITORS; i++) {
        Ibp__V1__ObservationBatch b = IBP__V1__OBSERVATION_BATCH__INIT;
        b.batch_seq = ++batch_seq;
        b.n_observations = 1;
        b.observations = list;
        publish(mon[i], IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH, &b.base);
    }
}

void ibp_test_dns_override(dns_env *e, const char *member, bool disabled)
{
    (void)e;
    Ibp__V1__MemberOverride o = IBP__V1__MEMBER_OVERRIDE__INIT;
    o.member = (char *)member;
    o.disabled = disabled;
    o.reason = "maintenance";
    publish(ops, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_MEMBER_OVERRIDE, &o.base);
}

void ibp_test_dns_wait_online(dns_env *e, const char *member, bool ipv6, bool want)
{
    char line[512];
    snprintf(line, sizeof line,
             "{\"cmd\":\"member_online\",\"domain\":\"%s\",\"member\":\"%s\",\"ipv6\":%s}",
             DNS_HOST, member, ipv6 ? "true" : "false");
    for (int i = 0; i < 400; i++) {
        json_t *j = control(e, line);
        bool got = j && json_is_true(json_object_get(j, "online"));
        bool ok = j && json_is_true(json_object_get(j, "ok"));
        json_decref(j);
        if (ok && got == want)
            return;
        sleep_ms(50);
    }
    fail_msg("%s did not become %s over IPv%d on the dns node", member, want ? "online" : "offline",
             ipv6 ? 6 : 4);
}

int ibp_test_dns_http_post(const dns_env *e, const char *path, const char *method, const char *body,
                           size_t len, char **resp)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)e->http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/javascript\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                      method, path, len);
    (void)!write(fd, head, (size_t)hn);
    for (size_t off = 0; off < len;) {
        ssize_t w = send(fd, body + off, len - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the server may answer 413 and close before reading it all */
        off += (size_t)w;
    }
    char *buf = calloc(1, 1 << 16);
    size_t got = 0;
    ssize_t r;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (got < (1 << 16) - 1 && poll(&p, 1, 5000) > 0 &&
           (r = read(fd, buf + got, (1 << 16) - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    int status = 0;
    sscanf(buf, "HTTP/1.%*d %d", &status);
    if (resp) {
        char *b = strstr(buf, "\r\n\r\n");
        *resp = strdup(b ? b + 4 : "");
    }
    free(buf);
    return status;
}
