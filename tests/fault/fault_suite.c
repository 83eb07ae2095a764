/*
 * The fault suite: one scenario per run, against the real cluster of
 * fault_cluster.h under load (fault_load.h), counted by fault_witness.h.
 *
 *   fault_suite SCENARIO
 *
 * Scenarios:
 *   baseline          no fault (10 s of nothing): the figures to compare with
 *   kill9-monitor     kill -9 of mon2, restarted 5 s later
 *   kill9-consensus   kill -9 of con1 (a consensus replica), restarted 5 s later
 *   kill9-persist     kill -9 of ibp-persist, restarted 5 s later
 *   kill9-dns         kill -9 of dns1 (the DNS-role node), restarted 3 s later
 *   lost-workdir      kill -9 of mon2 and dns1, their work dirs deleted, both
 *                     restarted 3 s later with nothing: they must continue above
 *                     the sequence numbers the bus shows (no replica rejects a
 *                     replay, nothing goes to dead letters)
 *   nats-server-loss  three clustered nats-servers, streams at R3: the one
 *                     leading OFFICIAL's replicas is killed (-9) and started
 *                     again 15 s later
 *   mariadb-down      MariaDB stopped for IBP_FAULT_DB_DOWN_S (default 120) s
 *   disk-full         dns1's work dir (a 4 MiB tmpfs) filled for 10 s while
 *                     it journals usage and saves caches, then freed
 *   clock-skew        mon1 restarted with its clock 7 minutes ahead and mon2
 *                     7 minutes behind (libfaketime) for 15 s, then set right
 *   netns-partition   mon3 runs in a network namespace joined by a veth pair;
 *                     the link goes down for 15 s, then up again
 *
 * Every run: the cluster starts, dns1 gets 100 hits/s, one member's endpoint
 * port flaps every 3 s (official status changes, events), the fault is
 * injected and removed, the flapping port is then held in the state opposite
 * to the official one (a change the cluster must still notice), and converged_s
 * is the time from the fault's removal until the newest official snapshot
 * matches the ports and dns1 serves it. The load stops, dns1 stops cleanly
 * (its last flush), persist catches up, and the witness counts. The last line
 * printed is
 *
 *   FAULT <scenario> hits_published=N hits_stored=N hits_lost=N hits_doubled=N
 *         events_expected=N events_stored=N events_lost=N events_doubled=N converged_s=X
 *
 * (one line), preceded by a FAULT-DETAIL line. Exit 0 when every lost and
 * doubled count is 0, the cluster converged, the epochs are 1..N, every
 * expected event was published, nothing went to dead letters and (unless
 * dns1 was killed) every hit dns1 acknowledged was published; 77 when the
 * scenario cannot run here (not root for namespaces or mounts, libfaketime
 * missing), saying why; 1 otherwise.
 *
 * kill -9 of dns1 loses the hits it counted since its last flush (at most
 * intervals.usage_flush_ms of traffic: counters live in memory between
 * flushes, DESIGN.md §7); that run reports them as dns_unflushed_at_kill in
 * the detail line, and the FAULT line counts from what dns1 published.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fault_cluster.h"
#include "fault_load.h"
#include "fault_witness.h"
#include "ibp/seq_recovery.h"

#define EXIT_SKIP 77
#define HITS_PER_SECOND 100
#define FLAP_MS 3000
#define CONVERGE_LIMIT_MS 120000

typedef struct scenario scenario;

typedef struct run {
    const scenario *sc;
    fault_cluster fc;
    fault_load *load;
    fc_opts opts;
    char netns[32], veth_host[16], veth_ns[16], host_addr[32], ns_addr[32];
    bool netns_made;
    char fs[1024]; /* dns1's small file system (disk-full) */
    bool fs_mounted;
    char filler[1100];
    bool dns_killed;
    int nats_killed; /* index of the nats-server killed */
    ibp_seq_last_own mon2_last, dns1_last; /* lost-workdir: their last messages at the kill */
} run;

struct scenario {
    const char *name;
    int (*prepare)(run *r); /* before the cluster starts; may return EXIT_SKIP */
    int (*inject)(run *r);
    int hold_ms;
    int (*restore)(run *r);
    void (*cleanup)(run *r);
    int (*check)(run *r); /* after convergence, while the cluster runs; may be NULL */
};

/* ---- helpers ------------------------------------------------------------------ */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "fault: '%s' failed (%d)\n", cmd, rc);
    return rc == 0 ? 0 : -1;
}

static const char *faketime_lib(void)
{
    static const char *const paths[] = {
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
        if (access(paths[i], R_OK) == 0)
            return paths[i];
    return NULL;
}

/* ---- scenarios -------------------------------------------------------------- */

static int no_fault(run *r)
{
    (void)r;
    printf("fault: none (baseline)\n");
    return 0;
}
static int nothing_to_restore(run *r)
{
    (void)r;
    return 0;
}

static int kill_node(run *r, int i)
{
    printf("fault: kill -9 %s\n", r->fc.node[i].name);
    return fc_node_signal(&r->fc, i, SIGKILL);
}

static int inject_kill_mon(run *r)
{
    return kill_node(r, FC_MON2);
}
static int restore_kill_mon(run *r)
{
    return fc_node_start(&r->fc, FC_MON2, NULL);
}
static int inject_kill_con(run *r)
{
    return kill_node(r, FC_CON1);
}
static int restore_kill_con(run *r)
{
    return fc_node_start(&r->fc, FC_CON1, NULL);
}
static int inject_kill_persist(run *r)
{
    return kill_node(r, FC_PERSIST1);
}
static int restore_kill_persist(run *r)
{
    return fc_node_start(&r->fc, FC_PERSIST1, NULL);
}

static int inject_kill_dns(run *r)
{
    r->dns_killed = true;
    return kill_node(r, FC_DNS1);
}
static int restore_kill_dns(run *r)
{
    return fc_node_start(&r->fc, FC_DNS1, NULL);
}

/* The last message node signed on its own subject (ibp/seq_recovery.h). */
static int last_own(run *r, int node, ibp_seq_last_own *out)
{
    const char *name = r->fc.node[node].name;
    bool hits = node == FC_DNS1;
    char subject[256];
    snprintf(subject, sizeof subject, hits ? "ibp.hits.%s" : "ibp.local.%s", name);
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    ibp_err err = {0};
    int rc = -1;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = fc_nats_options(&r->fc, o);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, o);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK)
        fprintf(stderr, "fault: NATS: %s\n", natsStatus_GetText(s));
    else if (ibp_seq_last_own_read(js, r->fc.roster, name, hits ? "HITS" : "LOCAL", subject, out,
                                   &err) != IBP_OK)
        fprintf(stderr, "fault: last message on %s: %s\n", subject, err.msg);
    else if (!out->found)
        fprintf(stderr, "fault: no message of %s on %s\n", name, subject);
    else
        rc = 0;
    if (rc == 0)
        printf("fault: last message of %s on %s: envelope seq %" PRIu64 ", %s %" PRIu64 "\n",
               name, subject, out->envelope_seq, hits ? "flush_seq" : "batch_seq",
               out->payload_seq);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return rc;
}

static int inject_lost_workdir(run *r)
{
    r->dns_killed = true;
    if (kill_node(r, FC_MON2) != 0 || kill_node(r, FC_DNS1) != 0)
        return -1;
    /* Dead: nothing of theirs can follow these. */
    if (last_own(r, FC_MON2, &r->mon2_last) != 0 || last_own(r, FC_DNS1, &r->dns1_last) != 0)
        return -1;
    printf("fault: work dirs of mon2 and dns1 deleted\n");
    return sh("rm -rf '%s' '%s'", r->fc.node[FC_MON2].work, r->fc.node[FC_DNS1].work);
}
static int restore_lost_workdir(run *r)
{
    if (sh("mkdir -p '%s' '%s'", r->fc.node[FC_MON2].work, r->fc.node[FC_DNS1].work) != 0)
        return -1;
    return fc_node_start(&r->fc, FC_MON2, NULL) || fc_node_start(&r->fc, FC_DNS1, NULL) ? -1 : 0;
}
/*
 * mon2 and dns1 went on above their old numbers: their newest messages on
 * the bus are newer than those at the kill (a node that restarted at 1 would
 * have its first messages dropped by JetStream as duplicates of the old
 * message ids, and the later ones refused as replays), and no replica
 * refused anything.
 */
static int check_no_replays(run *r)
{
    ibp_seq_last_own mon2, dns1;
    if (last_own(r, FC_MON2, &mon2) != 0 || last_own(r, FC_DNS1, &dns1) != 0)
        return -1;
    int bad = 0;
    if (mon2.envelope_seq <= r->mon2_last.envelope_seq) {
        fprintf(stderr, "fault: mon2 published nothing above envelope seq %" PRIu64 "\n",
                r->mon2_last.envelope_seq);
        bad = 1;
    }
    if (dns1.envelope_seq <= r->dns1_last.envelope_seq ||
        dns1.payload_seq <= r->dns1_last.payload_seq) {
        fprintf(stderr, "fault: dns1 published nothing above flush_seq %" PRIu64 "\n",
                r->dns1_last.payload_seq);
        bad = 1;
    }
    for (int i = FC_CON1; i <= FC_CON3; i++) {
        long long replays = fc_status_num(&r->fc, i, "replica", "rejected_total");
        printf("fault: %s rejected %lld envelopes\n", r->fc.node[i].name, replays);
        if (replays != 0)
            bad = 1;
    }
    return bad ? -1 : 0;
}

static int prepare_nats3(run *r)
{
    r->opts.nats_servers = 3;
    return 0;
}
static int inject_nats_loss(run *r)
{
    int replicas = 0;
    int k = fw_stream_leader(&r->fc, "OFFICIAL", &replicas);
    if (k < 0)
        return -1;
    if (replicas != 3) {
        fprintf(stderr, "fault: OFFICIAL has %d replicas, not 3\n", replicas);
        return -1;
    }
    r->nats_killed = k;
    printf("fault: kill -9 nats-server %d of 3 (it leads OFFICIAL, R%d)\n", k + 1, replicas);
    return fc_nats_kill(&r->fc, k);
}
static int restore_nats_loss(run *r)
{
    printf("fault: nats-server %d starts again\n", r->nats_killed + 1);
    return fc_nats_restart(&r->fc, r->nats_killed);
}

static int inject_db_down(run *r)
{
    printf("fault: MariaDB stops\n");
    return ibp_testenv_private_signal(&r->fc.servers, IBP_TESTENV_MYSQL, SIGTERM);
}
static int restore_db_down(run *r)
{
    printf("fault: MariaDB starts again\n");
    return ibp_testenv_private_restart(&r->fc.servers, IBP_TESTENV_MYSQL);
}

/* Unmounts the small file systems of earlier runs that were killed before their cleanup. */
static void remove_stale_mounts(void)
{
    FILE *f = fopen("/proc/mounts", "r");
    char line[2048], dir[1024];
    unsigned pid = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "ibp-fault-%u %1023s tmpfs", &pid, dir) != 2)
            continue;
        char path[64];
        snprintf(path, sizeof path, "/proc/%u", pid);
        if (access(path, F_OK) == 0)
            continue;
        printf("fault: unmounting %s of a run that is gone\n", dir);
        if (umount2(dir, MNT_DETACH) == 0)
            rmdir(dir);
    }
    if (f)
        fclose(f);
}

static int prepare_disk(run *r)
{
    if (geteuid() != 0) {
        printf("fault: disk-full needs root to mount a tmpfs; skipped\n");
        return EXIT_SKIP;
    }
    remove_stale_mounts();
    if (ibp_testenv_mkdtemp(r->fs, sizeof r->fs) != 0)
        return -1;
    char source[64]; /* names the run, so a later one can tell a leftover */
    snprintf(source, sizeof source, "ibp-fault-%u", (unsigned)getpid());
    if (mount(source, r->fs, "tmpfs", MS_NOSUID | MS_NODEV, "size=4m,mode=0700") != 0) {
        printf("fault: cannot mount a tmpfs on %s (%s); skipped\n", r->fs, strerror(errno));
        rmdir(r->fs);
        r->fs[0] = '\0';
        return EXIT_SKIP;
    }
    r->fs_mounted = true;
    r->opts.dns_work_dir = r->fs;
    snprintf(r->filler, sizeof r->filler, "%s/filler", r->fs);
    return 0;
}
static int inject_disk(run *r)
{
    int fd = open(r->filler, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    static char block[64 * 1024];
    memset(block, 'x', sizeof block);
    size_t total = 0;
    ssize_t w;
    while ((w = write(fd, block, sizeof block)) > 0)
        total += (size_t)w;
    while ((w = write(fd, block, 1)) > 0) /* the last partial block */
        total += (size_t)w;
    int e = errno;
    close(fd);
    printf("fault: %s full (%zu bytes written, then %s)\n", r->fs, total, strerror(e));
    return e == ENOSPC ? 0 : -1;
}
static int restore_disk(run *r)
{
    printf("fault: %s freed\n", r->fs);
    return unlink(r->filler) == 0 ? 0 : -1;
}
static void cleanup_disk(run *r)
{
    if (r->fs_mounted && umount2(r->fs, MNT_DETACH) != 0)
        fprintf(stderr, "fault: umount %s: %s\n", r->fs, strerror(errno));
    if (r->fs[0])
        rmdir(r->fs);
}

static int prepare_skew(run *r)
{
    (void)r;
    if (!faketime_lib()) {
        printf("fault: libfaketime is not installed (Debian package libfaketime); skipped\n");
        return EXIT_SKIP;
    }
    return 0;
}
static int inject_skew(run *r)
{
    static char preload[256];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", faketime_lib());
    char *ahead[] = {preload, "FAKETIME=+7m", "FAKETIME_DONT_FAKE_MONOTONIC=1",
                     "FAKETIME_NO_CACHE=1", NULL};
    char *behind[] = {preload, "FAKETIME=-7m", "FAKETIME_DONT_FAKE_MONOTONIC=1",
                      "FAKETIME_NO_CACHE=1", NULL};
    printf("fault: mon1 restarts 7 min ahead, mon2 7 min behind\n");
    if (fc_node_signal(&r->fc, FC_MON1, SIGTERM) != 0 ||
        fc_node_start(&r->fc, FC_MON1, ahead) != 0 ||
        fc_node_signal(&r->fc, FC_MON2, SIGTERM) != 0 ||
        fc_node_start(&r->fc, FC_MON2, behind) != 0)
        return -1;
    /* The skew must be real: the envelopes they sign carry their clocks. */
    int64_t ahead_ms = 0, behind_ms = 0;
    if (fw_clock_offset(&r->fc, "mon1", 10000, &ahead_ms) != 0 ||
        fw_clock_offset(&r->fc, "mon2", 10000, &behind_ms) != 0)
        return -1;
    printf("fault: mon1's messages are created %+.1f s off, mon2's %+.1f s\n",
           (double)ahead_ms / 1000.0, (double)behind_ms / 1000.0);
    if (ahead_ms < 6 * 60000 || behind_ms > -6 * 60000) {
        fprintf(stderr, "fault: the clocks are not skewed (is libfaketime working?)\n");
        return -1;
    }
    return 0;
}
static int restore_skew(run *r)
{
    printf("fault: mon1 and mon2 restart with the right time\n");
    if (fc_node_signal(&r->fc, FC_MON1, SIGTERM) != 0 ||
        fc_node_start(&r->fc, FC_MON1, NULL) != 0 ||
        fc_node_signal(&r->fc, FC_MON2, SIGTERM) != 0 || fc_node_start(&r->fc, FC_MON2, NULL) != 0)
        return -1;
    return 0;
}

/* Deletes namespaces an earlier run left behind (killed before its cleanup). */
static void remove_stale_netns(void)
{
    FILE *p = popen("ip netns list 2>/dev/null", "r");
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        unsigned pid = 0;
        char path[64];
        if (sscanf(line, "ibpfault%u", &pid) != 1)
            continue;
        snprintf(path, sizeof path, "/proc/%u", pid);
        if (access(path, F_OK) != 0) {
            printf("fault: removing namespace ibpfault%u of a run that is gone\n", pid);
            sh("ip netns del ibpfault%u", pid);
        }
    }
    if (p)
        pclose(p);
}

static int prepare_netns(run *r)
{
    if (geteuid() != 0 || system("ip netns list >/dev/null 2>&1") != 0) {
        printf("fault: netns-partition needs root and iproute2 (ip netns); skipped\n");
        return EXIT_SKIP;
    }
    remove_stale_netns();
    unsigned pid = (unsigned)getpid();
    srand((unsigned)time(NULL) ^ pid);
    /* 198.18.0.0/15 (RFC 2544, benchmarking): a /30 picked at random. */
    unsigned b = 18u + (unsigned)(rand() % 2), c = (unsigned)(rand() % 256),
             d = (unsigned)(rand() % 64) * 4u;
    snprintf(r->netns, sizeof r->netns, "ibpfault%u", pid);
    snprintf(r->veth_host, sizeof r->veth_host, "ibpf%uh", pid % 1000000u);
    snprintf(r->veth_ns, sizeof r->veth_ns, "ibpf%un", pid % 1000000u);
    snprintf(r->host_addr, sizeof r->host_addr, "198.%u.%u.%u", b, c, d + 1);
    snprintf(r->ns_addr, sizeof r->ns_addr, "198.%u.%u.%u", b, c, d + 2);
    if (sh("ip netns add %s", r->netns) != 0) {
        printf("fault: cannot create a network namespace here; skipped\n");
        return EXIT_SKIP;
    }
    r->netns_made = true;
    if (sh("ip link add %s type veth peer name %s", r->veth_host, r->veth_ns) != 0 ||
        sh("ip link set %s netns %s", r->veth_ns, r->netns) != 0 ||
        sh("ip addr add %s/30 dev %s", r->host_addr, r->veth_host) != 0 ||
        sh("ip link set %s up", r->veth_host) != 0 ||
        sh("ip -n %s addr add %s/30 dev %s", r->netns, r->ns_addr, r->veth_ns) != 0 ||
        sh("ip -n %s link set %s up", r->netns, r->veth_ns) != 0 ||
        sh("ip -n %s link set lo up", r->netns) != 0)
        return -1;
    printf("fault: namespace %s, %s (host) <-> %s (mon3)\n", r->netns, r->host_addr, r->ns_addr);
    r->opts.nats_host = r->host_addr;
    r->opts.mon3_netns = r->netns;
    return 0;
}
static int inject_netns(run *r)
{
    printf("fault: mon3 cut off (link down)\n");
    return sh("ip -n %s link set %s down", r->netns, r->veth_ns);
}
static int restore_netns(run *r)
{
    printf("fault: mon3 reconnected (link up)\n");
    return sh("ip -n %s link set %s up", r->netns, r->veth_ns);
}
static void cleanup_netns(run *r)
{
    if (!r->netns_made)
        return;
    /* Deleting the namespace deletes its end of the pair, and with it ours. */
    sh("ip netns del %s", r->netns);
}

static const scenario SCENARIOS[] = {
    {"baseline", NULL, no_fault, 10000, nothing_to_restore, NULL, NULL},
    {"kill9-monitor", NULL, inject_kill_mon, 5000, restore_kill_mon, NULL, NULL},
    {"kill9-consensus", NULL, inject_kill_con, 5000, restore_kill_con, NULL, NULL},
    {"kill9-persist", NULL, inject_kill_persist, 5000, restore_kill_persist, NULL, NULL},
    {"kill9-dns", NULL, inject_kill_dns, 3000, restore_kill_dns, NULL, NULL},
    {"lost-workdir", NULL, inject_lost_workdir, 3000, restore_lost_workdir, NULL,
     check_no_replays},
    {"nats-server-loss", prepare_nats3, inject_nats_loss, 15000, restore_nats_loss, NULL, NULL},
    {"mariadb-down", NULL, inject_db_down, 120000, restore_db_down, NULL, NULL},
    {"disk-full", prepare_disk, inject_disk, 10000, restore_disk, cleanup_disk, NULL},
    {"clock-skew", prepare_skew, inject_skew, 15000, restore_skew, NULL, NULL},
    {"netns-partition", prepare_netns, inject_netns, 15000, restore_netns, cleanup_netns, NULL},
};

/* ---- the run ---------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Waits up to ms for dns1 to serve an epoch >= 1. */
static int wait_first_epoch(run *r, int ms)
{
    int64_t end = fc_mono_ms() + ms;
    while (fc_status_num(&r->fc, FC_DNS1, "official", "epoch") < 1) {
        if (fc_mono_ms() > end || interrupted) {
            for (int i = 0; i < FC_NODES; i++)
                fc_dump_log(&r->fc, i);
            fprintf(stderr, "fault: no official snapshot within %d ms\n", ms);
            return -1;
        }
        fc_sleep_ms(200);
    }
    return 0;
}

static void sleep_interruptible(int ms)
{
    int64_t end = fc_mono_ms() + ms;
    while (!interrupted && fc_mono_ms() < end)
        fc_sleep_ms(100);
}

static int run_scenario(run *r, fw_counts *counts, double *converged_s, bool *converged)
{
    unsigned ports[FC_PORTS];
    const char *extra =
        r->opts.nats_host && strcmp(r->opts.nats_host, "127.0.0.1") != 0 ? r->opts.nats_host : NULL;
    if (fl_start(&r->load, extra, ports) != 0 || fc_start(&r->fc, &r->opts, ports) != 0)
        return -1;
    if (fl_hits_start(r->load, &r->fc, HITS_PER_SECOND) != 0 || wait_first_epoch(r, 60000) != 0)
        return -1;
    fl_flap(r->load, FLAP_MS);
    printf("fault: cluster up; %d hits/s to dns1, endpoint port flapping every %d ms\n",
           HITS_PER_SECOND, FLAP_MS);
    sleep_interruptible(8000);

    int64_t t0 = fc_mono_ms();
    if (r->sc->inject(r) != 0)
        return -1;
    sleep_interruptible(r->sc->hold_ms);
    if (r->sc->restore(r) != 0)
        return -1;
    int64_t restored = fc_mono_ms();
    printf("fault: fault lasted %.1f s\n", (double)(restored - t0) / 1000.0);

    /* Hold the port opposite to the official state: converging needs a new epoch. */
    int official_up = fw_official_flap_up(&r->fc);
    bool final_up = official_up >= 0 ? !official_up : !fl_flap_up(r->load);
    fl_hold(r->load, final_up);
    *converged = false;
    uint64_t epoch = 0;
    while (!interrupted && fc_mono_ms() - restored < CONVERGE_LIMIT_MS) {
        int c = fw_converged(&r->fc, final_up, &epoch);
        if (c < 0)
            return -1;
        if (c == 1) {
            *converged = true;
            break;
        }
        fc_sleep_ms(100);
    }
    *converged_s = (double)(fc_mono_ms() - restored) / 1000.0;
    printf("fault: %s at epoch %" PRIu64 " after %.1f s\n",
           *converged ? "converged" : "did NOT converge", epoch, *converged_s);

    sleep_interruptible(3000); /* some load after the fault too */
    if (r->sc->check && r->sc->check(r) != 0)
        return -1;
    fl_hits_stop(r->load);
    /* A clean stop flushes dns1's counters (its last HitBatch). */
    if (fc_node_signal(&r->fc, FC_DNS1, SIGTERM) != 0)
        return -1;
    if (fw_wait_persisted(&r->fc, 60000) != 0)
        return -1;
    return fw_count(&r->fc, counts);
}

static uint64_t diff(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fault_suite SCENARIO\nscenarios:");
        for (size_t i = 0; i < sizeof SCENARIOS / sizeof *SCENARIOS; i++)
            fprintf(stderr, " %s", SCENARIOS[i].name);
        fprintf(stderr, "\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    run r = {0};
    for (size_t i = 0; i < sizeof SCENARIOS / sizeof *SCENARIOS; i++)
        if (strcmp(argv[1], SCENARIOS[i].name) == 0)
            r.sc = &SCENARIOS[i];
    if (!r.sc) {
        fprintf(stderr, "fault_suite: unknown scenario '%s'\n", argv[1]);
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    scenario sc = *r.sc;
    const char *db_down = getenv("IBP_FAULT_DB_DOWN_S");
    if (strcmp(sc.name, "mariadb-down") == 0 && db_down && atoi(db_down) > 0)
        sc.hold_ms = atoi(db_down) * 1000;
    r.sc = &sc;

    int rc = sc.prepare ? sc.prepare(&r) : 0;
    if (rc == EXIT_SKIP) {
        if (sc.cleanup)
            sc.cleanup(&r);
        return EXIT_SKIP;
    }
    fw_counts n = {0};
    double converged_s = 0;
    bool converged = false;
    if (rc == 0)
        rc = run_scenario(&r, &n, &converged_s, &converged);
    if (rc != 0)
        for (int i = 0; i < FC_NODES; i++)
            if (r.fc.node[i].name[0])
                fc_dump_log(&r.fc, i);
    uint64_t acked = r.load ? fl_hits_acked(r.load) : 0;
    uint64_t failed = r.load ? fl_hits_failed(r.load) : 0;
    fl_free(r.load);
    fc_stop(&r.fc);
    if (sc.cleanup)
        sc.cleanup(&r);
    if (rc != 0) {
        printf("FAULT %s failed to run (see above)\n", sc.name);
        return 1;
    }

    uint64_t hits_lost = diff(n.hits_published, n.hits_stored);
    uint64_t hits_doubled = diff(n.hits_stored, n.hits_published);
    uint64_t ev_lost = diff(n.events_expected, n.events_stored);
    uint64_t ev_doubled = diff(n.events_stored, n.events_expected) + n.event_ids_doubled;
    char conv[32];
    if (converged)
        snprintf(conv, sizeof conv, "%.1f", converged_s);
    else
        snprintf(conv, sizeof conv, "never");
    printf("FAULT-DETAIL %s hits_acked=%" PRIu64 " hits_refused=%" PRIu64
           " dns_unflushed_at_kill=%" PRIu64 " hit_batches=%" PRIu64 " hit_msgs=%" PRIu64
           " epochs=%" PRIu64 " epochs_contiguous=%s events_announced=%" PRIu64
           " events_published=%" PRIu64 " dead_letters=%" PRIu64 "\n",
           sc.name, acked, failed, r.dns_killed ? diff(acked, n.hits_published) : 0, n.hit_batches,
           n.hit_msgs, n.epochs, n.epochs_contiguous ? "yes" : "no", n.events_announced,
           n.events_published, n.dead_letters);
    printf("FAULT %s hits_published=%" PRIu64 " hits_stored=%" PRIu64 " hits_lost=%" PRIu64
           " hits_doubled=%" PRIu64 " events_expected=%" PRIu64 " events_stored=%" PRIu64
           " events_lost=%" PRIu64 " events_doubled=%" PRIu64 " converged_s=%s\n",
           sc.name, n.hits_published, n.hits_stored, hits_lost, hits_doubled, n.events_expected,
           n.events_stored, ev_lost, ev_doubled, conv);

    bool ok = hits_lost == 0 && hits_doubled == 0 && ev_lost == 0 && ev_doubled == 0 && converged &&
              n.epochs_contiguous && n.events_published == n.events_announced &&
              n.dead_letters == 0 && n.hits_published > 0 && n.events_expected > 0;
    if (!r.dns_killed && acked != n.hits_published) {
        fprintf(stderr, "fault: dns1 acknowledged %" PRIu64 " hits but published %" PRIu64 "\n",
                acked, n.hits_published);
        ok = false;
    }
    if (r.dns_killed && n.hits_published > acked) {
        fprintf(stderr, "fault: more hits published than acknowledged\n");
        ok = false;
    }
    return ok ? 0 : 1;
}
