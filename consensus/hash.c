/*
 * Hashing for the vote engine: the key index hash, the digest elements and the
 * event ids. Everything here must give the same bits on every machine that
 * runs a replica, so input bytes are read as little-endian words explicitly
 * and every integer field is serialised to a fixed width before hashing.
 *
 * The hash is ibp_hash_bytes (ibp/hash_index.h, portable, little-endian
 * words): good dispersion for the index and for the additive multiset digest,
 * fast on short strings. It is not a cryptographic hash (see ibp_vote_digest()).
 */
#include <stdio.h>
#include <string.h>

#include "vote_internal.h"

/* Seeds: one for the index, four digest lanes, two event-id halves. */
#define SEED_INDEX 0x6962705f6b657931ULL /* "ibp_key1" */
static const uint64_t seed_lane[4] = {0x3c6ef372fe94f82bULL, 0xa54ff53a5f1d36f1ULL,
                                      0x510e527fade682d1ULL, 0x9b05688c2b3e6c1fULL};
static const uint64_t seed_event[2] = {0x1f83d9abfb41bd6bULL, 0x5be0cd19137e2179ULL};

/* Chains a key's fields into h: type and ipv6 first, then the four strings. */
static uint64_t hash_key_seeded(const vote_kview *k, uint64_t seed)
{
    uint64_t h = ibp_hash_mix64(seed ^ ((uint64_t)k->type << 8 | (uint64_t)(k->ipv6 ? 1 : 0)));
    for (int i = 0; i < 4; i++)
        h = ibp_hash_bytes(k->s[i], k->len[i], h);
    return h;
}

uint64_t ibp__vote_key_hash(const vote_kview *k)
{
    return hash_key_seeded(k, SEED_INDEX);
}

static void put64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

void ibp__vote_entry_element(const vote_kview *k, uint8_t status, int64_t check_time_ms,
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
        h = ibp_hash_bytes(fixed, sizeof fixed, h);
        h = ibp_hash_bytes(error, errlen, h);
        h = ibp_hash_bytes(data, datalen, h);
        lanes[l] = h;
    }
}

void ibp__vote_override_element(const char *member, const char *reason, uint64_t lanes[4])
{
    static const unsigned char tag[1] = {'O'};
    for (int l = 0; l < 4; l++) {
        uint64_t h = ibp_hash_bytes(tag, 1, seed_lane[l]);
        h = ibp_hash_bytes(member, strlen(member), h);
        h = ibp_hash_bytes(reason, strlen(reason), h);
        lanes[l] = h;
    }
}

static void event_id(uint64_t epoch, uint64_t a, uint64_t b, char out[IBP_VOTE_EVENT_ID_SIZE])
{
    snprintf(out, IBP_VOTE_EVENT_ID_SIZE, "%llu-%016llx%016llx", (unsigned long long)epoch,
             (unsigned long long)a, (unsigned long long)b);
}

void ibp__vote_event_id_key(uint64_t epoch, const vote_kview *k, char out[IBP_VOTE_EVENT_ID_SIZE])
{
    static const unsigned char tag[1] = {'S'};
    uint64_t a = ibp_hash_bytes(tag, 1, hash_key_seeded(k, seed_event[0]));
    uint64_t b = ibp_hash_bytes(tag, 1, hash_key_seeded(k, seed_event[1]));
    event_id(epoch, a, b, out);
}

void ibp__vote_event_id_override(uint64_t epoch, const char *member,
                                 char out[IBP_VOTE_EVENT_ID_SIZE])
{
    static const unsigned char tag[1] = {'O'};
    size_t n = strlen(member);
    uint64_t a = ibp_hash_bytes(member, n, ibp_hash_bytes(tag, 1, seed_event[0]));
    uint64_t b = ibp_hash_bytes(member, n, ibp_hash_bytes(tag, 1, seed_event[1]));
    event_id(epoch, a, b, out);
}

/* The multiset digest is the lane-wise sum mod 2^64 of its elements, so
 * adding and removing commute and the order of changes never matters. */
void ibp__vote_digest_add(uint64_t d[4], const uint64_t el[4])
{
    for (int l = 0; l < 4; l++)
        d[l] += el[l];
}

void ibp__vote_digest_sub(uint64_t d[4], const uint64_t el[4])
{
    for (int l = 0; l < 4; l++)
        d[l] -= el[l];
}

void ibp__vote_digest_bytes(const uint64_t d[4], uint8_t out[IBP_VOTE_DIGEST_SIZE])
{
    for (int l = 0; l < 4; l++)
        put64le(out + 8 * l, d[l]);
}
