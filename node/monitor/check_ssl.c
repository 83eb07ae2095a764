/* The ssl module: TLS to the member's address with SNI = the domain, full
 * verification (libcurl), then the leaf certificate's expiry and issuer. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "check_modules.h"
#include "ibp/check_rules.h"
#include "tls_conn.h"

static void name_text(X509_NAME *name, char *out, size_t cap)
{
    out[0] = '\0';
    if (!name)
        return;
    int nids[] = {NID_organizationName, NID_commonName};
    for (size_t i = 0; i < 2 && !out[0]; i++)
        X509_NAME_get_text_by_NID(name, nids[i], out, (int)cap);
}

void ibp_check_run_ssl(const ibp_check_target *t, const ibp_check_env *env, int64_t deadline_ms,
                       ibp_check_outcome *out)
{
    ibp__tls_conn c;
    char why[400];
    if (ibp__tls_conn_open(&c, t, env, true, true, deadline_ms, why, sizeof why) != 0) {
        ibp_check_fail(out, "ssl: %s", why);
        ibp__tls_conn_close(&c);
        return;
    }
    /* The leaf as curl saw it in the verified handshake (CURLINFO_CERTINFO). */
    const char *pem = ibp__tls_conn_leaf_pem(&c);
    BIO *bio = pem ? BIO_new_mem_buf(pem, -1) : NULL;
    X509 *cert = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    struct tm tm;
    if (!cert || !ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm)) {
        ibp_check_fail(out, "ssl: no peer certificate to read");
        X509_free(cert);
        ibp__tls_conn_close(&c);
        return;
    }
    ibp_ssl_facts f = {.not_after_s = (int64_t)timegm(&tm), .port = t->port};
    name_text(X509_get_issuer_name(cert), f.issuer, sizeof f.issuer);
    name_text(X509_get_subject_name(cert), f.subject, sizeof f.subject);
    X509_free(cert);
    ibp__tls_conn_close(&c);
    int64_t now = (int64_t)time(NULL);
    out->up = ibp_ssl_judge(&t->params, &f, now, out->error, sizeof out->error);
    out->data_json = ibp_ssl_data(&f, now);
}
