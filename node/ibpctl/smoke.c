/*
 * `ibpctl smoke`: an end-to-end check of a deployment's bus and database.
 *
 * With a key of its own (generated in --work-dir, role monitor, in a roster
 * file there), it seals a Heartbeat, publishes it to a JetStream stream with
 * the Ibp-Type, Ibp-Signer and Nats-Msg-Id headers, publishes it again to see
 * JetStream drop the duplicate, reads it back through a durable pull consumer,
 * verifies it against the roster and acknowledges it. Then it applies the
 * schema migrations to a MariaDB database and reads the tables back.
 * Prints one JSON object with what it saw; exit 0 only if every step passed.
 */
#include <getopt.h>
#include <inttypes.h>
#include <mysql.h>
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ibp/clock.h"
#include "ibp/envelope.h"
#include "ibp/roster.h"
#include "ibp/schema.h"
#include "ibp/subject.h"
#include "ibpctl.h"

#define SMOKE_NODE "smoke"
#define SMOKE_STREAM "SMOKE"
#define SMOKE_SUBJECT "ibp.smoke." SMOKE_NODE

struct smoke_opts {
    const char *nats_url;
    const char *mysql_host;
    unsigned mysql_port;
    const char *mysql_socket;
    const char *mysql_user;
    const char *mysql_password;
    const char *database;
    const char *work_dir;
    const char *sql_dir;
};

/* Loads (or on first use creates) the smoke key and roster in work_dir. */
static ibp_status smoke_identity(const char *work_dir, ibp_key *key, ibp_roster **roster,
                                 ibp_err *err)
{
    char key_path[4096], roster_path[4096];
    snprintf(key_path, sizeof key_path, "%s/smoke.key", work_dir);
    snprintf(roster_path, sizeof roster_path, "%s/smoke-roster.json", work_dir);
    mkdir(work_dir, 0700);
    ibp_status st = ibp_key_load(key_path, key, err);
    if (st == IBP_E_IO) {
        if ((st = ibp_key_generate(key)) != IBP_OK ||
            (st = ibp_key_save(key, key_path, err)) != IBP_OK)
            return st;
        remove(roster_path);
        if ((st = ibpctl_roster_add_key(roster_path, SMOKE_NODE, IBP_ROLE_MONITOR, key->pk, err)) !=
            IBP_OK)
            return st;
    } else if (st != IBP_OK) {
        return st;
    }
    return ibp_roster_load(roster_path, roster, err);
}

static ibp_status nats_fail(ibp_err *err, const char *what, natsStatus s, jsErrCode jerr)
{
    return ibp_err_set(err, IBP_E_NATS, "nats: %s: %s (jetstream error %d: %s)", what,
                       natsStatus_GetText(s), (int)jerr, nats_GetLastError(NULL));
}

/* The bus half of the smoke test; fills the JSON fields it reports. */
static ibp_status smoke_bus(const struct smoke_opts *o, ibp_err *err, char *report, size_t cap)
{
    ibp_key key;
    ibp_roster *roster = NULL;
    ibp_signer *signer = NULL;
    ibp_verifier *verifier = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsStreamInfo *si = NULL;
    jsPubAck *pa = NULL, *pa2 = NULL;
    natsMsg *msg = NULL;
    natsSubscription *sub = NULL;
    natsMsgList list = {0};
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    uint64_t seq = 0;
    jsErrCode jerr = 0;
    natsStatus s;
    ibp_verified vm = {0};
    char seq_path[4096], msg_id[128], server_id[128] = "";

    ibp_status st = smoke_identity(o->work_dir, &key, &roster, err);
    if (st != IBP_OK)
        goto out;
    snprintf(seq_path, sizeof seq_path, "%s/smoke.seq", o->work_dir);
    if ((st = ibp_signer_new(SMOKE_NODE, &key, seq_path, &signer, err)) != IBP_OK)
        goto out;
    if ((st = ibp_verifier_new(roster, NULL, &verifier)) != IBP_OK) {
        ibp_err_set(err, st, "verifier: %s", ibp_strerror(st));
        goto out;
    }

    Ibp__V1__Heartbeat hb = IBP__V1__HEARTBEAT__INIT;
    char *roles[] = {"monitor"};
    hb.n_roles = 1;
    hb.roles = roles;
    if ((st = ibp_signer_seal(signer, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_HEARTBEAT, &hb.base,
                              ibp_clock_wall_ms(), &sealed, &sealed_len, &seq, err)) != IBP_OK)
        goto out;

    if ((st = ibpctl_nats_connect(o->nats_url, "ibpctl-smoke", &nc, err)) != IBP_OK)
        goto out;
    natsConnection_GetConnectedServerId(nc, server_id, sizeof server_id);
    if ((s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK) {
        st = nats_fail(err, "jetstream context", s, 0);
        goto out;
    }
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {"ibp.smoke.>"};
    cfg.Name = SMOKE_STREAM;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.MaxAge = (int64_t)3600 * 1000000000; /* smoke messages expire after an hour */
    s = js_AddStream(&si, js, &cfg, NULL, &jerr);
    if (s != NATS_OK && jerr != JSStreamNameExistErr) {
        st = nats_fail(err, "add stream " SMOKE_STREAM, s, jerr);
        goto out;
    }

    snprintf(msg_id, sizeof msg_id, "%s-%" PRIu64, SMOKE_NODE, seq);
    for (int attempt = 0; attempt < 2; attempt++) {
        if ((s = natsMsg_Create(&msg, SMOKE_SUBJECT, NULL, (const char *)sealed,
                                (int)sealed_len)) != NATS_OK ||
            (s = natsMsgHeader_Set(msg, IBP_HDR_TYPE, "Heartbeat")) != NATS_OK ||
            (s = natsMsgHeader_Set(msg, IBP_HDR_SIGNER, SMOKE_NODE)) != NATS_OK) {
            st = nats_fail(err, "build message", s, 0);
            goto out;
        }
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = msg_id;
        s = js_PublishMsg(attempt ? &pa2 : &pa, js, msg, &po, &jerr);
        natsMsg_Destroy(msg);
        msg = NULL;
        if (s != NATS_OK) {
            st = nats_fail(err, "publish", s, jerr);
            goto out;
        }
    }
    if (!pa2->Duplicate) {
        st = ibp_err_set(err, IBP_E_NATS,
                         "nats: the second publish of %s was not dropped as a "
                         "duplicate",
                         msg_id);
        goto out;
    }

    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = SMOKE_STREAM;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = pa->Sequence;
    /* A consumer per run: the smoke test reads exactly the message it sent. */
    char durable[64];
    snprintf(durable, sizeof durable, "smoke-%" PRIu64, pa->Sequence);
    if ((s = js_PullSubscribe(&sub, js, SMOKE_SUBJECT, durable, NULL, &so, &jerr)) != NATS_OK) {
        st = nats_fail(err, "pull subscribe", s, jerr);
        goto out;
    }
    if ((s = natsSubscription_Fetch(&list, sub, 1, 5000, &jerr)) != NATS_OK || list.Count != 1) {
        st = nats_fail(err, "fetch", s, jerr);
        goto out;
    }
    natsMsg *got = list.Msgs[0];
    st = ibp_verifier_check(verifier, (const uint8_t *)natsMsg_GetData(got),
                            (size_t)natsMsg_GetDataLength(got), &vm, err);
    if (st != IBP_OK)
        goto out;
    if ((s = natsMsg_AckSync(got, NULL, &jerr)) != NATS_OK) {
        st = nats_fail(err, "ack", s, jerr);
        goto out;
    }
    snprintf(report, cap,
             "\"nats\": {\"url\": \"%s\", \"server_id\": \"%s\", \"stream\": \"%s\", "
             "\"stream_seq\": %" PRIu64 ", \"duplicate_dropped\": true, "
             "\"verified\": {\"signer\": \"%s\", \"seq\": %" PRIu64 ", \"type\": \"%s\"}}",
             o->nats_url, server_id, SMOKE_STREAM, pa->Sequence, vm.envelope->signer,
             vm.envelope->seq, ibp_payload_type_name(vm.envelope->type));
out:
    ibp_verified_clear(&vm);
    natsMsgList_Destroy(&list);
    if (sub) {
        natsSubscription_Unsubscribe(sub); /* deletes the per-run durable */
        natsSubscription_Destroy(sub);
    }
    natsMsg_Destroy(msg);
    jsPubAck_Destroy(pa);
    jsPubAck_Destroy(pa2);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    free(sealed);
    ibp_verifier_free(verifier);
    ibp_signer_free(signer);
    ibp_roster_free(roster);
    ibp_key_wipe(&key);
    return st;
}

/* The database half: migrate, then list the tables. */
static ibp_status smoke_db(const struct smoke_opts *o, ibp_err *err, char *report, size_t cap)
{
    ibp_status st = IBP_OK;
    MYSQL *db = mysql_init(NULL);
    MYSQL_RES *res = NULL;
    char sql[256];
    int version = 0;
    if (!db)
        return ibp_err_set(err, IBP_E_NOMEM, "mysql_init failed");
    if (!mysql_real_connect(db, o->mysql_host, o->mysql_user, o->mysql_password, NULL,
                            o->mysql_port, o->mysql_socket, 0)) {
        st = ibp_err_set(err, IBP_E_DB, "mariadb: connect %s:%u: %u: %s",
                         o->mysql_host ? o->mysql_host : "localhost", o->mysql_port,
                         mysql_errno(db), mysql_error(db));
        goto out;
    }
    snprintf(sql, sizeof sql, "CREATE DATABASE IF NOT EXISTS `%s`", o->database);
    if (mysql_query(db, sql) != 0 || mysql_select_db(db, o->database) != 0) {
        st = ibp_err_set(err, IBP_E_DB, "mariadb: database %s: %u: %s", o->database,
                         mysql_errno(db), mysql_error(db));
        goto out;
    }
    if ((st = ibp_schema_migrate(db, o->sql_dir, &version, err)) != IBP_OK)
        goto out;
    if (mysql_query(db, "SELECT VERSION(), (SELECT COUNT(*) FROM information_schema.tables "
                        "WHERE table_schema = DATABASE())") != 0 ||
        !(res = mysql_store_result(db))) {
        st = ibp_err_set(err, IBP_E_DB, "mariadb: read back: %u: %s", mysql_errno(db),
                         mysql_error(db));
        goto out;
    }
    MYSQL_ROW row = mysql_fetch_row(res);
    snprintf(report, cap,
             "\"mariadb\": {\"server_version\": \"%s\", \"database\": \"%s\", "
             "\"schema_version\": %d, \"tables\": %s}",
             row && row[0] ? row[0] : "?", o->database, version, row && row[1] ? row[1] : "0");
out:
    if (res)
        mysql_free_result(res);
    mysql_close(db);
    return st;
}

int ibpctl_cmd_smoke(int argc, char **argv)
{
    struct smoke_opts o = {
        .nats_url = IBPCTL_DEFAULT_NATS,
        .mysql_host = "127.0.0.1",
        .mysql_port = 3306,
        .mysql_user = "root",
        .database = "ibp",
        .work_dir = ".",
        .sql_dir = NULL, /* ibp_schema_default_dir(): next to ibpctl or the source tree */
    };
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'n'},
        {"mysql-host", required_argument, 0, 'H'},
        {"mysql-port", required_argument, 0, 'P'},
        {"mysql-socket", required_argument, 0, 'S'},
        {"mysql-user", required_argument, 0, 'u'},
        {"database", required_argument, 0, 'd'},
        {"work-dir", required_argument, 0, 'w'},
        {"sql-dir", required_argument, 0, 's'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "n:H:P:S:u:d:w:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.nats_url = optarg;
            break;
        case 'H':
            o.mysql_host = optarg;
            break;
        case 'P':
            o.mysql_port = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'S':
            o.mysql_socket = optarg;
            break;
        case 'u':
            o.mysql_user = optarg;
            break;
        case 'd':
            o.database = optarg;
            break;
        case 'w':
            o.work_dir = optarg;
            break;
        case 's':
            o.sql_dir = optarg;
            break;
        case 'h':
            printf("usage: ibpctl smoke [--nats URL] [--mysql-host H --mysql-port P | "
                   "--mysql-socket PATH]\n"
                   "                    [--mysql-user U] [--database NAME] [--work-dir DIR] "
                   "[--sql-dir DIR]\n"
                   "Signs a heartbeat, round-trips it through a JetStream stream (SMOKE) and\n"
                   "verifies it, then applies the schema to the MariaDB database and reads it\n"
                   "back. The MariaDB password, if any, is read from $IBP_MYSQL_PASSWORD.\n"
                   "Prints a JSON report; exit 0 when every step passed. The NATS identity\n"
                   "needs the admin's rights (stream SMOKE, subjects ibp.smoke.>).\n%s",
                   IBPCTL_NATS_HELP);
            return 0;
        default:
            if (ibpctl_nats_opt(c, optarg))
                break;
            return 2;
        }
    }
    o.mysql_password = getenv("IBP_MYSQL_PASSWORD");
    char bus[1024] = "", dbr[1024] = "";
    ibp_err err = {0};
    if (smoke_bus(&o, &err, bus, sizeof bus) != IBP_OK) {
        fprintf(stderr, "ibpctl smoke: bus: %s\n", err.msg);
        return 1;
    }
    if (smoke_db(&o, &err, dbr, sizeof dbr) != IBP_OK) {
        fprintf(stderr, "ibpctl smoke: database: %s\n", err.msg);
        return 1;
    }
    printf("{%s,\n %s}\n", bus, dbr);
    return 0;
}
