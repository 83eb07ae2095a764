/*
 * `ibpctl snapshot` and `ibpctl audit`: the official snapshots on stream
 * OFFICIAL, whether a quorum of consensus nodes certified them
 * (certificate_report.h), and each changed key of one traced back to the
 * signed batches in LOCAL that voted for it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibp/bus.h"
#include "ibp/certificate.h"
#include "ibp/decode_json.h"
#include "ibp/subject.h"
#include "certificate_report.h"
#include "ibpctl.h"

#define EXIT_USAGE 2
/* Messages looked at on each side of a snapshot for others of its epoch. */
#define NEIGHBOURS_MAX 4

/* A snapshot message: envelope and payload decoded (not verified). */
struct snap {
    natsMsg *msg;
    Ibp__V1__Envelope *env;
    Ibp__V1__OfficialSnapshot *s;
};

static void snap_clear(struct snap *x)
{
    if (x->s)
        ibp__v1__official_snapshot__free_unpacked(x->s, NULL);
    if (x->env)
        ibp__v1__envelope__free_unpacked(x->env, NULL);
    natsMsg_Destroy(x->msg);
    memset(x, 0, sizeof *x);
}

/* Takes msg (owned) and decodes it; false (msg freed) when it is not a snapshot. */
static bool snap_parse(natsMsg *msg, struct snap *x)
{
    memset(x, 0, sizeof *x);
    x->msg = msg;
    x->env = ibp__v1__envelope__unpack(NULL, (size_t)natsMsg_GetDataLength(msg),
                                       (const uint8_t *)natsMsg_GetData(msg));
    if (x->env && x->env->type == IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT)
        x->s = ibp__v1__official_snapshot__unpack(NULL, x->env->payload.len, x->env->payload.data);
    if (!x->s) {
        snap_clear(x);
        return false;
    }
    return true;
}

static bool snap_at(jsCtx *js, uint64_t seq, struct snap *x)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    if (js_GetMsg(&m, js, IBP_STREAM_OFFICIAL, seq, NULL, &jerr) != NATS_OK)
        return false;
    return snap_parse(m, x);
}

/* The snapshot of epoch (0: the last one) into *x. IBP_E_NOT_FOUND when there is none. */
static ibp_status find_snapshot(jsCtx *js, uint64_t epoch, struct snap *x, ibp_err *err)
{
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s =
        js_GetLastMsg(&m, js, IBP_STREAM_OFFICIAL, IBP_SUBJECT_OFFICIAL_SNAPSHOT, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
        return ibp_err_set(err, IBP_E_NOT_FOUND, "no snapshot on %s yet", IBP_STREAM_OFFICIAL);
    if (s != NATS_OK)
        return ibp_err_set(err, IBP_E_NATS, "stream %s: %s (%d)", IBP_STREAM_OFFICIAL,
                           natsStatus_GetText(s), (int)jerr);
    if (!snap_parse(m, x))
        return ibp_err_set(err, IBP_E_PAYLOAD_DECODE, "the last message on %s is not a snapshot",
                           IBP_STREAM_OFFICIAL);
    uint64_t last_epoch = x->s->epoch, last_seq = natsMsg_GetSequence(x->msg);
    if (epoch == 0 || epoch == last_epoch)
        return IBP_OK;
    snap_clear(x);
    if (epoch > last_epoch)
        return ibp_err_set(err, IBP_E_NOT_FOUND, "epoch %" PRIu64 " not reached (last %" PRIu64 ")",
                           epoch, last_epoch);
    jsStreamInfo *si = NULL;
    uint64_t first = 1;
    if (js_GetStreamInfo(&si, js, IBP_STREAM_OFFICIAL, NULL, &jerr) == NATS_OK) {
        first = si->State.FirstSeq;
        jsStreamInfo_Destroy(si);
    }
    /* One message per epoch in order: start where it would be without gaps, then walk. */
    uint64_t seq = last_seq - (last_epoch - epoch);
    if (seq < first || seq > last_seq)
        seq = first;
    int dir = 0;
    for (uint64_t steps = 0; steps <= last_seq - first + 1 && seq >= first && seq <= last_seq;
         steps++) {
        if (snap_at(js, seq, x)) {
            if (x->s->epoch == epoch)
                return IBP_OK;
            int want = x->s->epoch < epoch ? 1 : -1;
            snap_clear(x);
            if (dir && want != dir)
                break; /* passed it: it is not there */
            dir = want;
        } else if (!dir) {
            dir = seq == first ? 1 : -1;
        }
        if (dir < 0 && seq == first)
            break;
        seq = dir > 0 ? seq + 1 : seq - 1;
    }
    return ibp_err_set(err, IBP_E_NOT_FOUND, "epoch %" PRIu64 " is not on %s (aged out?)", epoch,
                       IBP_STREAM_OFFICIAL);
}

/* The snapshots of one epoch, and of the epoch before, found on the subject. */
struct snaps {
    struct snap x[IBPCTL_CERT_SNAPSHOTS_MAX];
    size_t n;
    struct snap prev[IBPCTL_CERT_SNAPSHOTS_MAX];
    size_t nprev;
};

static void snaps_clear(struct snaps *v)
{
    for (size_t i = 0; i < v->n; i++)
        snap_clear(&v->x[i]);
    for (size_t i = 0; i < v->nprev; i++)
        snap_clear(&v->prev[i]);
    v->n = v->nprev = 0;
}

/*
 * Adds the snapshots of epoch e near stream sequence at (in first..last) to
 * xs (*n of cap held), and on the way back those of e-1 to prev (when not
 * NULL). Replicas publish one snapshot per epoch in order, so a second one of
 * e (a copy, or one signed by a stolen key) lands near the first. Messages
 * that are no snapshot are stepped over; a snapshot of any other epoch ends
 * the look on that side, as do NEIGHBOURS_MAX messages.
 */
static void look_around(jsCtx *js, uint64_t at, uint64_t first, uint64_t last, uint64_t e,
                        struct snap *xs, size_t *n, struct snap *prev, size_t *nprev)
{
    for (int dir = -1; dir <= 1; dir += 2) {
        uint64_t seq = at;
        for (int step = 0; step < NEIGHBOURS_MAX; step++) {
            if (dir < 0 ? seq <= first : seq >= last)
                break;
            seq = dir < 0 ? seq - 1 : seq + 1;
            struct snap y;
            if (!snap_at(js, seq, &y))
                continue;
            if (y.s->epoch == e && *n < IBPCTL_CERT_SNAPSHOTS_MAX) {
                xs[(*n)++] = y;
            } else if (dir < 0 && prev && e > 1 && y.s->epoch == e - 1 &&
                       *nprev < IBPCTL_CERT_SNAPSHOTS_MAX) {
                prev[(*nprev)++] = y;
            } else {
                snap_clear(&y);
                break;
            }
        }
    }
}

/*
 * The snapshot of epoch (0: the last one) into v->x[0], as find_snapshot
 * finds it, then the other snapshots of its epoch E next to it, and those of
 * E-1 (look_around); when E-1 is not just before, find_snapshot looks for it
 * and look_around for others of E-1 next to that one. Errors: those of
 * find_snapshot for epoch (not for E-1: then v->nprev is 0).
 */
static ibp_status find_snapshots(jsCtx *js, uint64_t epoch, struct snaps *v, ibp_err *err)
{
    memset(v, 0, sizeof *v);
    ibp_status st = find_snapshot(js, epoch, &v->x[0], err);
    if (st != IBP_OK)
        return st;
    v->n = 1;
    uint64_t e = v->x[0].s->epoch, at = natsMsg_GetSequence(v->x[0].msg), first = 1, last = at;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, js, IBP_STREAM_OFFICIAL, NULL, &jerr) == NATS_OK) {
        first = si->State.FirstSeq;
        last = si->State.LastSeq;
        jsStreamInfo_Destroy(si);
    }
    look_around(js, at, first, last, e, v->x, &v->n, v->prev, &v->nprev);
    if (e > 1 && v->nprev == 0) {
        ibp_err ignored = {0};
        if (find_snapshot(js, e - 1, &v->prev[0], &ignored) == IBP_OK) {
            v->nprev = 1;
            look_around(js, natsMsg_GetSequence(v->prev[0].msg), first, last, e - 1, v->prev,
                        &v->nprev, NULL, NULL);
        }
    }
    return IBP_OK;
}

/*
 * The certificate of the snapshots in v (certificate_report.h) into *r; an
 * empty report (not certified, no JSON) when the roster has no consensus
 * node. Errors: those of ibpctl_certificate_report_make.
 */
static ibp_status certify(jsCtx *js, const ibp_roster *roster, size_t quorum, const struct snaps *v,
                          ibpctl_certificate_report *r, ibp_err *err)
{
    memset(r, 0, sizeof *r);
    if (quorum == 0)
        return IBP_OK;
    ibpctl_cert_snapshot xs[IBPCTL_CERT_SNAPSHOTS_MAX], ps[IBPCTL_CERT_SNAPSHOTS_MAX];
    for (size_t i = 0; i < v->n; i++)
        xs[i] = (ibpctl_cert_snapshot){natsMsg_GetSequence(v->x[i].msg), v->x[i].env, v->x[i].s};
    for (size_t i = 0; i < v->nprev; i++)
        ps[i] = (ibpctl_cert_snapshot){natsMsg_GetSequence(v->prev[i].msg), v->prev[i].env,
                                       v->prev[i].s};
    return ibpctl_certificate_report_make(js, roster, quorum, xs, v->n, ps, v->nprev, r, err);
}

/* The "certificate" member of the output: the report's, or why there is none. */
static void set_certificate(json_t *out, ibpctl_certificate_report *r)
{
    json_t *c = r->json;
    r->json = NULL;
    if (!c)
        c = json_pack("{s:b,s:s}", "certified", 0, "reason", "the roster has no consensus node");
    json_object_set_new(out, "certificate", c);
}

/* Prints why the epoch is not certified (and the other snapshots of the epoch). */
static void print_certificate(const char *prog, const ibpctl_certificate_report *r,
                              const ibp_roster *roster, uint64_t epoch)
{
    if (r->quorum == 0 && ibp_certificate_consensus_nodes(roster) == 0)
        fprintf(stderr,
                "%s: epoch %" PRIu64 " is NOT certified: the roster has no consensus node\n", prog,
                epoch);
    else
        ibpctl_certificate_report_print(prog, r, epoch);
}

/* Verifies the snapshot message against the roster: sets "verified"/"reason"; true if ok. */
static bool verify_into(const ibp_roster *roster, const natsMsg *m, json_t *out)
{
    ibp_verifier *v = NULL;
    ibp_verified vm = {0};
    ibp_err err = {0};
    if (ibp_verifier_new(roster, NULL, &v) != IBP_OK)
        return false;
    ibp_status st = ibp_verifier_check_stateless(v, (const uint8_t *)natsMsg_GetData(m),
                                                 (size_t)natsMsg_GetDataLength(m), &vm, &err);
    ibp_verified_clear(&vm);
    ibp_verifier_free(v);
    json_object_set_new(out, "verified", json_boolean(st == IBP_OK));
    if (st != IBP_OK) {
        char reason[600];
        snprintf(reason, sizeof reason, "%s: %s", ibp_status_name(st), err.msg);
        json_object_set_new(out, "reason", json_string(reason));
    }
    return st == IBP_OK;
}

/* Shared option parsing of snapshot and audit. */
struct snap_opts {
    const char *url, *roster_path;
    uint64_t epoch;
    int full;
    uint64_t quorum; /* --quorum; 0: a majority of the roster's consensus nodes */
    bool quorum_set;
};

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end)
        return -1;
    *out = v;
    return 0;
}

static int parse_snap_opts(int argc, char **argv, struct snap_opts *o, const char *help)
{
    static const struct option opts[] = {
        {"nats", required_argument, 0, 'N'},
        {"roster", required_argument, 0, 'R'},
        {"epoch", required_argument, 0, 'e'},
        {"full", no_argument, 0, 'f'},
        {"quorum", required_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},
        IBPCTL_NATS_LONG_OPTIONS,
        {0, 0, 0, 0},
    };
    int c;
    o->url = IBPCTL_DEFAULT_NATS;
    o->roster_path = getenv("IBP_ROSTER"); /* deploy/local-cluster.sh's cluster.env */
    while ((c = getopt_long(argc, argv, "N:R:e:fq:h", opts, NULL)) != -1) {
        switch (c) {
        case 'N':
            o->url = optarg;
            break;
        case 'R':
            o->roster_path = optarg;
            break;
        case 'e':
            if (parse_u64(optarg, &o->epoch) != 0) {
                fprintf(stderr, "ibpctl: --epoch wants a number\n");
                return EXIT_USAGE;
            }
            break;
        case 'f':
            o->full = 1;
            break;
        case 'q':
            if (parse_u64(optarg, &o->quorum) != 0) {
                fprintf(stderr, "ibpctl: --quorum wants a number\n");
                return EXIT_USAGE;
            }
            o->quorum_set = true;
            break;
        case 'h':
            fputs(help, stdout);
            fputs(IBPCTL_NATS_HELP, stdout);
            return -1;
        default:
            if (ibpctl_nats_opt(c, optarg))
                break;
            return EXIT_USAGE;
        }
    }
    return 0;
}

/*
 * The quorum for the roster and --quorum into *q: 0 when the roster has no
 * consensus node (nothing can be certified). Returns 0, or EXIT_USAGE after
 * printing why (a quorum above the roster's consensus nodes).
 */
static int snap_quorum(const char *prog, const ibp_roster *roster, const struct snap_opts *o,
                       size_t *q)
{
    ibp_err err = {0};
    *q = 0;
    if (ibp_certificate_consensus_nodes(roster) == 0)
        return 0;
    if (ibpctl_certificate_report_quorum(prog, roster, o->quorum, q, &err) != IBP_OK) {
        fprintf(stderr, "%s: --quorum: %s\n", prog, err.msg);
        return EXIT_USAGE;
    }
    return 0;
}

int ibpctl_cmd_snapshot(int argc, char **argv)
{
    static const char prog[] = "ibpctl snapshot";
    struct snap_opts o = {0};
    int rc = parse_snap_opts(
        argc, argv, &o,
        "usage: ibpctl snapshot [--nats URL] [--roster FILE [--quorum N]] [--epoch N] [--full]\n"
        "Prints the last official snapshot on stream OFFICIAL (or epoch N) as JSON:\n"
        "epoch, LOCAL sequence covered, counts (entries, down, overrides), the overrides\n"
        "and the keys that changed at that epoch with their voters. --full adds every\n"
        "entry. With --roster the signature and the consensus role of the signer are\n"
        "checked, and the epoch statements on stream COSIGN must certify the snapshot:\n"
        "at least --quorum distinct consensus nodes of the roster (default: a majority\n"
        "of them; 1 only with a warning) signed its digest, bytes and previous digest\n"
        "(\"certificate\" in the output). Exit 1 when either fails.\n"
        "Default --nats " IBPCTL_DEFAULT_NATS ".\n");
    if (rc)
        return rc < 0 ? 0 : rc;
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        return EXIT_USAGE;
    }
    if (o.quorum_set && !o.roster_path) {
        fprintf(stderr, "%s: --quorum needs --roster FILE\n", prog);
        return EXIT_USAGE;
    }
    ibp_err err = {0};
    ibp_roster *roster = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    struct snaps v = {0};
    ibpctl_certificate_report cr = {0};
    size_t quorum = 0;
    bool told = false; /* the reason is printed already */
    rc = 1;
    if (o.roster_path && ibp_roster_load(o.roster_path, &roster, &err) != IBP_OK)
        goto out;
    if (roster && snap_quorum(prog, roster, &o, &quorum) != 0) {
        rc = EXIT_USAGE;
        told = true;
        goto out;
    }
    if (ibpctl_js_connect(o.url, &nc, &js, &err) != IBP_OK)
        goto out;
    /* Without a roster nothing is certified: the one snapshot found is enough. */
    if (roster ? find_snapshots(js, o.epoch, &v, &err) != IBP_OK ||
                     certify(js, roster, quorum, &v, &cr, &err) != IBP_OK
               : find_snapshot(js, o.epoch, &v.x[0], &err) != IBP_OK)
        goto out;
    if (!roster)
        v.n = 1;
    const struct snap *x = &v.x[cr.chosen];
    json_t *p =
        ibp_payload_to_json(IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, &x->s->base);
    if (!p) {
        ibp_err_set(&err, IBP_E_PAYLOAD_DECODE, "snapshot of epoch %" PRIu64 " is malformed",
                    x->s->epoch);
        goto out;
    }
    size_t down = 0, disabled = 0;
    for (size_t i = 0; i < x->s->n_entries; i++)
        down += x->s->entries[i]->status == IBP__V1__STATUS__STATUS_DOWN;
    for (size_t i = 0; i < x->s->n_overrides; i++)
        disabled += x->s->overrides[i]->disabled != 0;
    json_t *j = json_pack(
        "{s:I,s:I,s:I,s:I,s:s,s:I,s:I,s:O,s:{s:I,s:I,s:I,s:I},s:O,s:O}", "epoch",
        (json_int_t)x->s->epoch, "local_seq", (json_int_t)x->s->local_seq, "applied_ms",
        (json_int_t)x->s->applied_ms, "stream_seq", (json_int_t)natsMsg_GetSequence(x->msg),
        "signer", x->env->signer, "signer_seq", (json_int_t)x->env->seq, "created_ms",
        (json_int_t)x->env->created_ms, "state_digest", json_object_get(p, "state_digest"),
        "counts", "entries", (json_int_t)x->s->n_entries, "down", (json_int_t)down, "overrides",
        (json_int_t)x->s->n_overrides, "disabled", (json_int_t)disabled, "overrides",
        json_object_get(p, "overrides"), "changed", json_object_get(p, "evidence"));
    if (j && o.full)
        json_object_set(j, "entries", json_object_get(p, "entries"));
    json_decref(p);
    if (!j) {
        ibp_err_set(&err, IBP_E_NOMEM, "out of memory");
        goto out;
    }
    bool verified = !roster || verify_into(roster, x->msg, j);
    if (roster)
        set_certificate(j, &cr);
    json_dumpf(j, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(j);
    if (roster) {
        print_certificate(prog, &cr, roster, x->s->epoch);
        told = !cr.certified;
    }
    if (!verified) {
        ibp_err_set(&err, IBP_E_BAD_SIGNATURE, "the snapshot does not verify against the roster");
        told = false;
    } else if (!roster || cr.certified) {
        rc = 0;
    }
out:
    if (rc && !told)
        fprintf(stderr, "%s: %s\n", prog, err.msg[0] ? err.msg : "failed");
    ibpctl_certificate_report_clear(&cr);
    snaps_clear(&v);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ibp_roster_free(roster);
    return rc;
}

/* ---- audit -------------------------------------------------------------- */

/* The identity fields of a key (entry or ResultKey JSON), for comparison. */
static json_t *key_ident(json_t *k)
{
    static const char *const f[] = {"check_type", "check_name", "member",
                                    "domain",     "endpoint",   "ipv6"};
    json_t *o = json_object();
    for (size_t i = 0; o && i < sizeof f / sizeof f[0]; i++) {
        json_t *v = json_object_get(k, f[i]);
        json_object_set(o, f[i], v ? v : json_null());
    }
    return o;
}

/* Checks one vote against the batch stored at its LOCAL sequence; NULL reason when it holds. */
static const char *check_vote(jsCtx *js, ibp_verifier *v, json_t *ident, json_t *vote, char *why,
                              size_t whycap)
{
    uint64_t seq = (uint64_t)json_integer_value(json_object_get(vote, "local_seq"));
    const char *node = json_string_value(json_object_get(vote, "node"));
    const char *status = json_string_value(json_object_get(vote, "status"));
    uint64_t batch_seq = (uint64_t)json_integer_value(json_object_get(vote, "batch_seq"));
    natsMsg *m = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetMsg(&m, js, IBP_STREAM_LOCAL, seq, NULL, &jerr);
    if (s != NATS_OK) {
        snprintf(why, whycap, "LOCAL seq %" PRIu64 ": %s", seq, natsStatus_GetText(s));
        return why;
    }
    ibp_verified vm = {0};
    ibp_err err = {0};
    const char *res = NULL;
    if (ibp_verifier_check_stateless(v, (const uint8_t *)natsMsg_GetData(m),
                                     (size_t)natsMsg_GetDataLength(m), &vm, &err) != IBP_OK) {
        snprintf(why, whycap, "LOCAL seq %" PRIu64 " does not verify: %s", seq, err.msg);
        res = why;
    } else if (strcmp(vm.envelope->signer, node ? node : "") != 0) {
        snprintf(why, whycap, "LOCAL seq %" PRIu64 " is signed by %s, not %s", seq,
                 vm.envelope->signer, node ? node : "?");
        res = why;
    } else if (vm.envelope->type != IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OBSERVATION_BATCH) {
        snprintf(why, whycap, "LOCAL seq %" PRIu64 " is a %s, not an ObservationBatch", seq,
                 ibp_payload_type_name(vm.envelope->type));
        res = why;
    } else {
        const Ibp__V1__ObservationBatch *b = (const Ibp__V1__ObservationBatch *)vm.payload;
        const Ibp__V1__Observation *found = NULL;
        for (size_t i = 0; !found && i < b->n_observations; i++) {
            json_t *kj = ibp_result_key_to_json(b->observations[i]->key);
            json_t *ki = key_ident(kj);
            if (json_equal(ki, ident))
                found = b->observations[i];
            json_decref(ki);
            json_decref(kj);
        }
        if (b->batch_seq != batch_seq) {
            snprintf(why, whycap,
                     "LOCAL seq %" PRIu64 " has batch %" PRIu64 ", evidence says %" PRIu64, seq,
                     (uint64_t)b->batch_seq, batch_seq);
            res = why;
        } else if (!found) {
            snprintf(why, whycap, "LOCAL seq %" PRIu64 " has no observation of the key", seq);
            res = why;
        } else if (strcmp(ibp_status_value_name(found->status), status ? status : "") != 0) {
            snprintf(why, whycap, "LOCAL seq %" PRIu64 " reports %s, evidence says %s", seq,
                     ibp_status_value_name(found->status), status ? status : "?");
            res = why;
        }
    }
    ibp_verified_clear(&vm);
    natsMsg_Destroy(m);
    return res;
}

int ibpctl_cmd_audit(int argc, char **argv)
{
    static const char prog[] = "ibpctl audit";
    struct snap_opts o = {0};
    int rc = parse_snap_opts(
        argc, argv, &o,
        "usage: ibpctl audit EPOCH --roster FILE [--quorum N] [--nats URL]\n"
        "Checks that a quorum of the roster's consensus nodes certified the snapshot of\n"
        "EPOCH: their epoch statements on stream COSIGN sign its state digest, the hash\n"
        "of its bytes and the previous epoch's digest; at least --quorum distinct\n"
        "consensus nodes must count (default: a majority of them; 1 only with a\n"
        "warning). Then re-verifies every key that changed at EPOCH against the signed\n"
        "batches in LOCAL: each voter's batch is fetched by its LOCAL sequence, its\n"
        "signature and role checked, and its observation of the key compared with the\n"
        "evidence. Prints the certificate and per key the voters, those agreeing with\n"
        "the official status and the smallest quorum possible (max(2, voters/2+1); the\n"
        "active monitor count is not in the snapshot). Exit 1 when the epoch is not\n"
        "certified, a vote does not check out or a key lacks that quorum.\n"
        "Default --nats " IBPCTL_DEFAULT_NATS ".\n");
    if (rc)
        return rc < 0 ? 0 : rc;
    if (argc - optind == 1 && parse_u64(argv[optind], &o.epoch) != 0) {
        fprintf(stderr, "%s: EPOCH must be a number\n", prog);
        return EXIT_USAGE;
    }
    if (argc - optind > 1 || !o.roster_path) {
        fprintf(stderr, "%s: needs EPOCH (or --epoch) and --roster FILE\n", prog);
        return EXIT_USAGE;
    }
    ibp_err err = {0};
    ibp_roster *roster = NULL;
    ibp_verifier *v = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    struct snaps found = {0};
    ibpctl_certificate_report cr = {0};
    size_t quorum = 0;
    bool told = false; /* the reason is printed already */
    json_t *p = NULL, *out = NULL;
    rc = 1;
    if (ibp_roster_load(o.roster_path, &roster, &err) != IBP_OK)
        goto done;
    if (snap_quorum(prog, roster, &o, &quorum) != 0) {
        rc = EXIT_USAGE;
        told = true;
        goto done;
    }
    if (ibp_verifier_new(roster, NULL, &v) != IBP_OK) {
        ibp_err_set(&err, IBP_E_NOMEM, "out of memory");
        goto done;
    }
    if (ibpctl_js_connect(o.url, &nc, &js, &err) != IBP_OK ||
        find_snapshots(js, o.epoch, &found, &err) != IBP_OK ||
        certify(js, roster, quorum, &found, &cr, &err) != IBP_OK)
        goto done;
    const struct snap *x = &found.x[cr.chosen];
    p = ibp_payload_to_json(IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_OFFICIAL_SNAPSHOT, &x->s->base);
    out = json_pack("{s:I,s:I,s:s}", "epoch", (json_int_t)x->s->epoch, "local_seq",
                    (json_int_t)x->s->local_seq, "signer", x->env->signer);
    if (!p || !out) {
        ibp_err_set(&err, IBP_E_PAYLOAD_DECODE, "snapshot of epoch %" PRIu64 " is malformed",
                    x->s->epoch);
        goto done;
    }
    bool all_ok = verify_into(roster, x->msg, out);
    set_certificate(out, &cr);
    json_t *keys = json_array();
    json_object_set_new(out, "keys", keys);
    json_t *evidence = json_object_get(p, "evidence");
    size_t i;
    json_t *ev;
    json_array_foreach(evidence, i, ev)
    {
        json_t *key = json_object_get(ev, "key");
        json_t *ident = key_ident(key);
        bool removed = json_is_true(json_object_get(ev, "removed"));
        const char *official =
            removed ? "removed" : json_string_value(json_object_get(key, "status"));
        json_t *votes = json_object_get(ev, "votes"), *checked = json_array();
        size_t nv = json_array_size(votes), agree = 0, bad = 0, k;
        json_t *vote;
        json_array_foreach(votes, k, vote)
        {
            char why[700];
            const char *r = check_vote(js, v, ident, vote, why, sizeof why);
            json_t *cv = json_deep_copy(vote);
            json_object_set_new(cv, "ok", json_boolean(!r));
            if (r) {
                json_object_set_new(cv, "reason", json_string(r));
                bad++;
            } else if (official &&
                       strcmp(json_string_value(json_object_get(vote, "status")), official) == 0) {
                agree++;
            }
            json_array_append_new(checked, cv);
        }
        size_t quorum_at_least = nv / 2 + 1 < 2 ? 2 : nv / 2 + 1;
        bool pass = bad == 0 && (removed || agree >= quorum_at_least);
        all_ok = all_ok && pass;
        json_array_append_new(keys, json_pack("{s:O,s:s,s:I,s:I,s:I,s:b,s:o}", "key", ident,
                                              "official", official ? official : "?", "voters",
                                              (json_int_t)nv, "agreeing", (json_int_t)agree,
                                              "quorum_at_least", (json_int_t)quorum_at_least,
                                              "pass", (int)pass, "votes", checked));
        json_decref(ident);
    }
    json_object_set_new(out, "pass", json_boolean(all_ok && cr.certified));
    json_dumpf(out, stdout, JSON_INDENT(2));
    putchar('\n');
    print_certificate(prog, &cr, roster, x->s->epoch);
    told = !cr.certified;
    if (all_ok && cr.certified)
        rc = 0;
    else if (!all_ok) {
        ibp_err_set(&err, IBP_E_BAD_SIGNATURE, "epoch %" PRIu64 " does not check out", x->s->epoch);
        told = false;
    }
done:
    if (rc && !told)
        fprintf(stderr, "%s: %s\n", prog, err.msg[0] ? err.msg : "failed");
    json_decref(p);
    json_decref(out);
    ibpctl_certificate_report_clear(&cr);
    snaps_clear(&found);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    ibp_verifier_free(v);
    ibp_roster_free(roster);
    return rc;
}
