/*
 * Fuzz: one bus message through the envelope verifier (fixed roster, fresh
 * verifier per input, so the sequence check starts empty) and the stateless
 * check, then through ibp_decode_json with and without the roster.
 * Seeds: valid sealed envelopes of every payload type (corpus/envelope).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "ibp/decode_json.h"
#include "ibp/envelope.h"

static ibp_roster *roster;

static void decode(const uint8_t *data, size_t size, const ibp_roster *r)
{
    json_t *j = NULL;
    ibp_err err;
    if (ibp_decode_json(data, size, r, IBP__V1__PAYLOAD_TYPE__PAYLOAD_TYPE_UNSPECIFIED, &j, &err) ==
        IBP_OK) {
        char *s = json_dumps(j, JSON_COMPACT);
        free(s);
        json_decref(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!roster) {
        ibp_log_set_hook(ibp_fuzz_quiet_log, NULL);
        roster = ibp_fuzz_roster();
    }
    ibp_verifier *v = NULL;
    if (ibp_verifier_new(roster, NULL, &v) != IBP_OK)
        ibp_fuzz_abort("verifier");
    ibp_verified vm = {0};
    ibp_err err;
    if (ibp_verifier_check(v, data, size, &vm, &err) == IBP_OK) {
        if (!vm.envelope || !vm.payload || !vm.signer)
            abort();
        /* The same message again is a replay. */
        ibp_verified again = {0};
        if (ibp_verifier_check(v, data, size, &again, &err) != IBP_E_REPLAY)
            abort();
        ibp_verified_clear(&again);
        ibp_verified_clear(&vm);
    }
    if (ibp_verifier_check_stateless(v, data, size, &vm, &err) == IBP_OK)
        ibp_verified_clear(&vm);
    ibp_verifier_free(v);

    decode(data, size, roster);
    decode(data, size, NULL);
    return 0;
}
