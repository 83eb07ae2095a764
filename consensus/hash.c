/*
 * Hashing for the vote engine: the key index hash, the digest elements and the
 * event ids. Everything here must give the same bits on every machine that
 * runs a replica, so input bytes are read as little-endian words explicitly
 * and every integer field is serialised to a fixed width before hashing.
 *
 * The mix is a small xxh64-style round function with the murmur3 finaliser:
 * good dispersion for the index and for the additive multiset digest, fast on
 * short strings. It is not a cryptographic hash (see ibp_vote_digest()).
 */
#include <stdio.h>
#include <string.h>

#include "vote_internal.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL

/* Seeds: one for the index, four digest lanes, two event-id halves. */
#define SEED_INDEX 0x6962705f6b657931ULL /* "ibp_key1" */
static const uint64_t seed_lane[4] = {0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
                                      0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL};
static const uint64_t seed_event[2] = {0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t read64le(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

uint64_t vote_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

static inline uint64_t round64(uint64_t h, uint64_t w)
{
    w *= P2;
    w = rotl64(w, 31);
    w *= P1;
    h ^= w;
    return rotl64(h, 27) * P1 + P4;
}

uint64_t vote_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    /* The length enters first, so chaining several fields is unambiguous. */
    uint64_t h = seed + P3 + (uint64_t)len * P1;
    size_t n = len;
    while (n >= 8) {
        h = round64(h, read64le(p));
        p += 8;
        n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)p[i] << (8 * i);
        h = round64(h, w ^ ((uint64_t)n << 59));
    }
    return vote_mix64(h);
}

/* Chains a key's fields into h: type and ipv6 first, then the four strings. */
static uint64_t hash_key_seeded(const vote_kview *k, uint64_t seed)
{
    uint64_t h = vote_mix64(seed ^ ((uint64_t)k->type << 8 | (uint64_t)(k->ipv6 ? 1 : 0)));
    for (int i = 0; i < 4; i++)
        h = vote_hash_bytes(k->s[i], k->len[i], h);
    return h;
}

uint64_t vote_key_hash(const vote_kview *k)
{
    return hash_key_seeded(k, SEED_INDEX);
}

static void put64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void vote_entry_element(const vote_kview *k, uint8_t status, int64_t check_time_ms,
                        const char *error, size_t errlen, const char *data, size_t datalen,
                        uint64_t lanes[4])
{
    /* Tag 'E' separates entries from overrides ('O') in the same multiset. */
    unsigned char fixed[10];
    fixed[0] = 'E';
    fixed[1] = status;
    put64le(fixed + 2, (uint64_t)check_time_ms);
    for (int l = 0; l < 4; l++) {
        uint64_t h = hash_key_seeded(k, seed_lane[l]);
        h = vote_hash_bytes(fixed, sizeof fixed, h);
        h = vote_hash_bytes(error, errlen, h);
        h = vote_hash_bytes(data, datalen, h);
        lanes[l] = h;
    }
}

void vote_override_element(const char *member, const char *reason, uint64_t lanes[4])
{
    static const unsigned char tag[1] = {'O'};
    for (int l = 0; l < 4; l++) {
        uint64_t h = vote_hash_bytes(tag, 1, seed_lane[l]);
        h = vote_hash_bytes(member, strlen(member), h);
        h = vote_hash_bytes(reason, strlen(reason), h);
        lanes[l] = h;
    }
}

static void event_id(uint64_t epoch, uint64_t a, uint64_t b, char out[IBP_VOTE_EVENT_ID_SIZE])
{
    snprintf(out, IBP_VOTE_EVENT_ID_SIZE, "%llu-%016llx%016llx", (unsigned long long)epoch,
             (unsigned long long)a, (unsigned long long)b);
}

void vote_event_id_key(uint64_t epoch, const vote_kview *k, char out[IBP_VOTE_EVENT_ID_SIZE])
{
    static const unsigned char tag[1] = {'S'};
    uint64_t a = vote_hash_bytes(tag, 1, hash_key_seeded(k, seed_event[0]));
    uint64_t b = vote_hash_bytes(tag, 1, hash_key_seeded(k, seed_event[1]));
    event_id(epoch, a, b, out);
}

void vote_event_id_override(uint64_t epoch, const char *member, char out[IBP_VOTE_EVENT_ID_SIZE])
{
    static const unsigned char tag[1] = {'O'};
    size_t n = strlen(member);
    uint64_t a = vote_hash_bytes(member, n, vote_hash_bytes(tag, 1, seed_event[0]));
    uint64_t b = vote_hash_bytes(member, n, vote_hash_bytes(tag, 1, seed_event[1]));
    event_id(epoch, a, b, out);
}

/* The multiset digest is the lane-wise sum mod 2^64 of its elements, so
 * adding and removing commute and the order of changes never matters. */
void vote_digest_add(uint64_t d[4], const uint64_t el[4])
{
    for (int l = 0; l < 4; l++)
        d[l] += el[l];
}

void vote_digest_sub(uint64_t d[4], const uint64_t el[4])
{
    for (int l = 0; l < 4; l++)
        d[l] -= el[l];
}

void vote_digest_bytes(const uint64_t d[4], uint8_t out[IBP_VOTE_DIGEST_SIZE])
{
    for (int l = 0; l < 4; l++)
        put64le(out + 8 * l, d[l]);
}
